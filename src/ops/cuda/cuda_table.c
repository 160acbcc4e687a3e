// The CUDA op tables, generated from ops.h's op list (op `name` is cuda_name, cuda_ops.h), and the device's
// selection. fp32: `gemm` and attention's products on TF32 tensor cores (10-bit mantissa inputs, fp32
// accumulation) unless DDM_CUDA_TF32=0; `gemm_fp32` and `syrk` strict fp32. bf16: `gemm` and attention's
// products with bf16 inputs and fp32 accumulation; activations, weights, AdamW state and EMA stay fp32.
// docs/cuda.md has the details (what is deterministic, what is verified).
#ifdef DDM_CUDA
#include <stdio.h>
#include <string.h>
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_ops.h"
#include "ops/ops_internal.h"

#define CUDA_OP_ENTRY(name, params, args) .name = cuda_##name,
#define CUDA_TABLE_COMMON                                                                                     \
    .device = "cuda", .alloc = cuda_alloc, .free = cuda_free, .sumsq = cuda_sumsq,                            \
    .attention_saved_floats = cuda_attention_saved, DDM_OPS(CUDA_OP_ENTRY, DDM_OP_NO_D)

static const Ops ops_cuda = {.name = "cuda", .precision = "fp32", CUDA_TABLE_COMMON};

// The bf16 table is the fp32 one with its matrix multiplies replaced (designated initialisers: the later wins).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
static const Ops ops_cuda_bf16 = {.name = "cuda-bf16", .precision = "bf16", CUDA_TABLE_COMMON .gemm = cuda_bf16_gemm,
                                  .attention_fwd = cuda_bf16_attention_fwd,
                                  .attention_bwd = cuda_bf16_attention_bwd};
#pragma GCC diagnostic pop

const Ops *ops_cuda_select(const char *precision, const char **err) {
    static int said[2];
    int bf16 = !strcmp(precision, "bf16");
    const char *why = cuda_backend_init(precision);
    if (why) {
        *err = why;
        return NULL;
    }
    if (!said[bf16]) {   // once per precision: what the matrix products compute in
        said[bf16] = 1;
        if (bf16)
            fprintf(stderr, "ddm: cuda: precision bf16: matrix products (GEMMs, attention) with bf16 inputs and fp32 "
                    "accumulation; activations, weights, AdamW state and EMA in fp32\n");
        else if (ops_cuda_tf32())
            fprintf(stderr, "ddm: cuda: precision fp32: GEMMs and attention products on TF32 tensor cores (10-bit "
                    "mantissa inputs, fp32 accumulation); DDM_CUDA_TF32=0 for strict fp32\n");
        else
            fprintf(stderr, "ddm: cuda: precision fp32: strict fp32 everywhere (DDM_CUDA_TF32=0)\n");
    }
    return bf16 ? &ops_cuda_bf16 : &ops_cuda;
}
#endif
