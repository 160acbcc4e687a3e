// --device and --precision -> an op table (ops.h). Error lines name the flag, so callers print them as they are.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops/cpu/gemm_bf16.h"
#include "ops/ops_internal.h"

#ifdef DDM_CUDA
#define CUDA_NAME ", cuda"
#else
#define CUDA_NAME ""
#endif

const char *ops_device_names(void) { return "cpu, cpu-isolated" CUDA_NAME; }

const char *ops_default_device(void) {
    const char *d = getenv("DDM_DEVICE");
    return d && *d ? d : "cpu";
}

const char *ops_resolve_precision(const char *device, const char *precision) {
    if (strcmp(precision, "auto")) return precision;
    if (!strcmp(device, "cuda")) return "bf16";
    return gemm_bf16_supported() ? "bf16" : "fp32";
}

const Ops *ops_select(const char *device, const char *precision, const char **err) {
    static char msg[256];
    *err = NULL;
    precision = ops_resolve_precision(device, precision);
    int bf16 = !strcmp(precision, "bf16");
    if (!bf16 && strcmp(precision, "fp32")) {
        snprintf(msg, sizeof msg, "--precision %s: expected fp32, bf16 or auto", precision);
        *err = msg;
        return NULL;
    }
    if (!strcmp(device, "cpu") || !strcmp(device, "cpu-isolated")) {
        if (ops_cpu_isa_error()) {
            *err = ops_cpu_isa_error();
            return NULL;
        }
        if (bf16 && !gemm_bf16_supported()) {
            *err = "--precision bf16: this CPU has no AVX512_BF16 (avx512_bf16 in /proc/cpuinfo), which the bf16 matrix "
                   "multiplies need";
            return NULL;
        }
        if (!strcmp(device, "cpu")) return bf16 ? &ops_cpu_bf16 : &ops_cpu;
        return bf16 ? &ops_cpu_isolated_bf16 : &ops_cpu_isolated;
    }
    if (!strcmp(device, "cuda")) {
#ifdef DDM_CUDA
        return ops_cuda_select(precision, err);
#else
        *err = "--device cuda: this build has no CUDA backend (it has: cpu, cpu-isolated); build with make cuda";
        return NULL;
#endif
    }
    snprintf(msg, sizeof msg, "--device '%s': unknown device (this build has: %s)", device, ops_device_names());
    *err = msg;
    return NULL;
}

const char *ops_device_label(const Ops *ops) {
    static char label[128];
    if (strcmp(ops->device, "cpu") && strcmp(ops->device, "cpu-isolated")) return ops->device;
    snprintf(label, sizeof label, "%s, kernels %s", ops->device, ops_cpu_isa());
    return label;
}
