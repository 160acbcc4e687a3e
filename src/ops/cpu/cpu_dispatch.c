// The CPU backend's choice of instruction-set level, made once before main: the highest level of DDM_CPU_ISAS
// (cpu_kernels.h) this CPU and its OS support, or the one $DDM_CPU_ISA names (v2, v3, v4: for tests and
// comparisons). This file is built for the baseline x86-64 like everything but the kernels, so a binary starts on
// any x86-64 CPU and says what it lacks instead of dying on an illegal instruction. Also here, compiled once: the
// double twins of the layer kernels (tests only) and what is the same at every level.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/ops_internal.h"

#define REAL double
#define FN(name) name##_f64
#define GEMM_FN cblas_dgemm
#define TANH_FN tanh
#define EXP_FN exp
#include "kernels.inc"
#undef REAL
#undef FN
#undef GEMM_FN
#undef TANH_FN
#undef EXP_FN

size_t cpu_attention_saved(int B, int T, int C, int NH) { (void)C; return (size_t)B * NH * T * (T + 1); }

typedef struct {
    const char *level, *arch, *what;
    int (*supported)(void);
    const Ops *fp32, *bf16;
} CpuIsa;

// __builtin_cpu_supports takes only a string literal (it also checks that the OS saves the AVX/AVX-512 state).
// GCC 12 knows the level names themselves; clang (the fuzz build: tests/fuzz) does not, so there each level is the
// conjunction of the features its code generation relies on (clang is never the build that ships).
#if defined(__clang__)
static int supported_v2(void) {
    return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("popcnt");
}
static int supported_v3(void) {
    return supported_v2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}
static int supported_v4(void) {
    return supported_v3() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd");
}
#else
#define ISA_SUPPORTED(level, arch, what) static int supported_##level(void) { return __builtin_cpu_supports(arch); }
DDM_CPU_ISAS(ISA_SUPPORTED)
#endif
#define ISA_ROW(level, arch, what) {#level, arch, what, supported_##level, &ops_cpu_##level, &ops_cpu_bf16_##level},
static const CpuIsa isas[] = {DDM_CPU_ISAS(ISA_ROW)};
enum { NISA = sizeof isas / sizeof isas[0] };

static const CpuIsa *chosen;   // NULL when no level can be used (isa_error says why)
static char isa_error[256], isa_name[64];

__attribute__((constructor)) static void cpu_isa_choose(void) {
    __builtin_cpu_init();   // constructors may run before libgcc's own
    char have[64] = "", all[64] = "";
    for (int i = 0; i < NISA; i++) {
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", all[0] ? ", " : "", isas[i].level);
        if (isas[i].supported()) {
            chosen = &isas[i];
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", have[0] ? ", " : "", isas[i].level);
        }
    }
    if (!chosen)
        snprintf(isa_error, sizeof isa_error, "this CPU lacks %s (%s), the lowest level ddm's CPU kernels are built for",
                 isas[0].arch, isas[0].what);
    const char *want = getenv("DDM_CPU_ISA");
    if (want && *want) {
        const CpuIsa *w = NULL;
        for (int i = 0; i < NISA; i++)
            if (!strcmp(want, isas[i].level) || !strcmp(want, isas[i].arch)) w = &isas[i];
        if (!w)
            snprintf(isa_error, sizeof isa_error, "DDM_CPU_ISA=%s: unknown level (expected one of: %s)", want, all);
        else if (!w->supported())
            snprintf(isa_error, sizeof isa_error, "DDM_CPU_ISA=%s: this CPU lacks %s (%s); it has: %s", want, w->arch,
                     w->what, have[0] ? have : "none");
        else
            chosen = w;
    }
    if (chosen) snprintf(isa_name, sizeof isa_name, "%s (%s)", chosen->arch, chosen->what);
}

const Ops *ops_cpu_table(int bf16) {
    if (isa_error[0]) ddm_fatal("%s", isa_error);
    return bf16 ? chosen->bf16 : chosen->fp32;
}

const char *ops_cpu_isa(void) { return chosen ? isa_name : "none"; }
const char *ops_cpu_isa_error(void) { return isa_error[0] ? isa_error : NULL; }
