// The CPU backend: OpenBLAS for GEMM, OpenMP loops for everything else; the bf16 table swaps in
// gemm_bf16 for every matrix multiply (Linears and attention's per-head products).
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/ops.h"

// GELU's tanh dominated the MLP's element-wise time with libm's scalar tanhf (more than the fc1 GEMM
// on a 2-core machine); this branch-free form vectorises. exp by 2^k * Taylor(r), |r| <= ln2/2
// (relative error ~2e-7); tanh(u) = 1 - 2/(exp(2u) + 1), absolute error ~2e-7 (fine inside GELU).
static inline float exp_vec(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float k = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    union { float f; int32_t i; } u = {.i = ((int32_t)k + 127) << 23};
    return p * u.f;
}
static inline float tanh_vec(float u) {
    float uc = u < -9.0f ? -9.0f : u > 9.0f ? 9.0f : u;
    float t = 1.0f - 2.0f / (exp_vec(2.0f * uc) + 1.0f);
    return u > 9.0f ? 1.0f : u < -9.0f ? -1.0f : t;   // exactly +-1 beyond, where 1 - t^2 must be 0
}

#define REAL float
#define FN(name) name##_f32
#define GEMM_FN cblas_sgemm
#define TANH_FN tanh_vec
#define EXP_FN expf
#include "kernels.inc"
#undef REAL
#undef FN
#undef GEMM_FN
#undef TANH_FN
#undef EXP_FN

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

static float *cpu_alloc(size_t n) {
    // 64-byte aligned for vector loads; zero-filled as the interface promises.
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, (n ? n : 1) * sizeof(float)) != 0)
        ddm_fatal("out of memory allocating %zu floats", n);
    memset(p, 0, n * sizeof(float));
    return p;
}
static void cpu_free(float *p) { free(p); }
static void cpu_copy(float *dst, const float *src, size_t n) { if (n) memmove(dst, src, n * sizeof(float)); }
static void cpu_zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

static void cpu_axpy(float *y, float a, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}
static void cpu_scale(float *x, float s, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

// Fixed-size chunks summed in order keep the result independent of the thread count.
static double cpu_sumsq(const float *x, size_t n) {
    const size_t chunk = 1 << 16;
    size_t nchunks = (n + chunk - 1) / chunk;
    double *part = xcalloc(nchunks ? nchunks : 1, sizeof(double));
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        size_t end = (c + 1) * chunk < n ? (c + 1) * chunk : n;
        double s = 0;
        for (size_t i = c * chunk; i < end; i++) s += (double)x[i] * x[i];
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nchunks; c++) s += part[c];
    free(part);
    return s;
}

static void cpu_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                      float beta2, float eps, float wd, float bc1, float bc2) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        p[i] -= lr * wd * p[i];   // decoupled decay first, as torch.optim.AdamW
        p[i] -= lr * mhat / (sqrtf(vhat) + eps);
    }
}

static void cpu_ema(float *e, const float *p, size_t n, float decay) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) e[i] = decay * e[i] + (1 - decay) * p[i];
}

static void attention_fwd_bf16(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    attention_fwd_with_f32(gemm_bf16, out, att, qkv, B, T, C, NH);
}
static void attention_bwd_bf16(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att,
                               int B, int T, int C, int NH) {
    attention_bwd_with_f32(gemm_bf16, dqkv, scratch, dout, qkv, att, B, T, C, NH);
}

// Everything but the matrix multiplies, shared by both tables.
#define CPU_OPS_COMMON \
    .alloc = cpu_alloc, .free = cpu_free, .to_device = cpu_copy, .to_host = cpu_copy, \
    .copy = cpu_copy, .zero = cpu_zero, .add_bias = add_bias_f32, .bias_grad = bias_grad_f32, \
    .add_broadcast = add_broadcast_f32, \
    .ln_modulate_fwd = ln_modulate_fwd_f32, .ln_modulate_bwd = ln_modulate_bwd_f32, \
    .gelu_fwd = gelu_fwd_f32, .gelu_bwd = gelu_bwd_f32, .silu_fwd = silu_fwd_f32, .silu_bwd = silu_bwd_f32, \
    .gated_residual_fwd = gated_residual_fwd_f32, .gated_residual_bwd = gated_residual_bwd_f32, \
    .patchify = patchify_f32, .patchify_bwd = patchify_bwd_f32, \
    .unpatchify = unpatchify_f32, .unpatchify_bwd = unpatchify_bwd_f32, \
    .embed_fwd = embed_fwd_f32, .embed_bwd = embed_bwd_f32, \
    .axpy = cpu_axpy, .scale = cpu_scale, .sumsq = cpu_sumsq, \
    .adamw = cpu_adamw, .ema = cpu_ema

const Ops ops_cpu = {
    .name = "cpu", CPU_OPS_COMMON,
    .gemm = gemm_f32, .attention_fwd = attention_fwd_f32, .attention_bwd = attention_bwd_f32,
};

const Ops ops_cpu_bf16 = {
    .name = "cpu-bf16", CPU_OPS_COMMON,
    .gemm = gemm_bf16, .attention_fwd = attention_fwd_bf16, .attention_bwd = attention_bwd_bf16,
};

const Ops *ops_cpu_precision(const char *precision, const char **err) {
    *err = NULL;
    if (!strcmp(precision, "fp32")) return &ops_cpu;
    if (!strcmp(precision, "bf16")) {
        if (gemm_bf16_supported()) return &ops_cpu_bf16;
        *err = "this CPU has no AVX512_BF16 (avx512_bf16 in /proc/cpuinfo), which the bf16 matrix multiplies need";
        return NULL;
    }
    *err = "expected fp32 or bf16";
    return NULL;
}
