// The CPU backend: OpenBLAS for GEMM, OpenMP loops for everything else; device memory is host memory. The
// bf16 table swaps in gemm_bf16 for `gemm` and attention's per-head products. Both tables are generated from
// ops.h's op list: every op `name` is the function CPU_FN(name) (kernels.inc for the layers, below for the rest).
// This file is compiled once per x86-64 level (CPU_ISA, cpu_kernels.h), each time for that level's instruction
// set (-march=x86-64-<level>): the element-wise loops vectorise for it, and from v3 on a*b+c contracts to FMA.
// cpu_dispatch.c chooses the level at start-up; every name here carries the level, so the copies coexist.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "ops/cpu/cpu_kernels.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/ops_internal.h"

#ifndef CPU_ISA
#error "compile with -DCPU_ISA=<level> (a level of DDM_CPU_ISAS, cpu_kernels.h), as the Makefile does"
#endif
#define CPU_CAT_(a, b, c) a##b##c
#define CPU_CAT(a, b, c) CPU_CAT_(a, b, c)
#define CPU_FN(name) CPU_CAT(cpu_, CPU_ISA, _##name)   // cpu_v3_gemm

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
#define FN(name) CPU_FN(name)
#define GEMM_FN cblas_sgemm
#define TANH_FN tanh_vec
#define EXP_FN expf
#include "kernels.inc"
#undef REAL
#undef FN
#undef GEMM_FN
#undef TANH_FN
#undef EXP_FN

// ---------------------------------------------------------------- memory

static void *cpu_alloc(size_t bytes) {
    // 64-byte aligned for vector loads; zero-filled as the interface promises.
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) ddm_fatal("out of memory allocating %zu bytes", bytes);
    memset(p, 0, bytes);
    return p;
}
static void cpu_free(void *p) { free(p); }
void CPU_FN(upload)(void *dst, const void *src, size_t bytes) { if (bytes) memcpy(dst, src, bytes); }
void CPU_FN(download)(void *dst, const void *src, size_t bytes) { if (bytes) memcpy(dst, src, bytes); }
void CPU_FN(synchronize)(void) {}
void CPU_FN(copy)(float *dst, const float *src, size_t n) { if (n) memmove(dst, src, n * sizeof(float)); }
void CPU_FN(zero)(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

// ---------------------------------------------------------------- products the losses keep in fp32

void CPU_FN(gemm_fp32)(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc) {
    CPU_FN(gemm)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void CPU_FN(syrk)(int N, int K, float alpha, const float *A, int lda, float beta, float *C, int ldc) {
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, N, K, alpha, A, lda, beta, C, ldc);
}

// ---------------------------------------------------------------- element-wise

// Computed as DiT does in float32 (frequencies and their products with t rounded to float), so that large DDPM
// timesteps give the same embedding as PyTorch.
void CPU_FN(timestep_embed)(float *out, const float *t, int B) {
    enum { FREQ_DIM = 256, HALF = FREQ_DIM / 2 };
    const float neg_log_period = (float)-log(10000.0);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < HALF; k++) {
            float freq = (float)exp((double)(neg_log_period * (float)k / (float)HALF));
            float arg = t[b] * freq;
            out[b * FREQ_DIM + k] = (float)cos((double)arg);
            out[b * FREQ_DIM + HALF + k] = (float)sin((double)arg);
        }
}

void CPU_FN(axpy)(float *y, float a, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void CPU_FN(scale)(float *x, float s, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void CPU_FN(scale_cols)(float *x, const float *s, long rows, int cols) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) x[r * cols + c] *= s[c];
}

void CPU_FN(copy_rows)(float *y, long y_stride, const float *x, long x_stride, int B, long n, int zero_tail) {
    for (int b = 0; b < B; b++) {
        memmove(y + b * y_stride, x + b * x_stride, (size_t)n * sizeof(float));
        if (zero_tail) memset(y + b * y_stride + n, 0, (size_t)(y_stride - n) * sizeof(float));
    }
}

void CPU_FN(affine_rows)(float *y1, float *y2, const float *x, const float *e, const double *coef, int B, long n,
                     long x_stride, long e_stride) {
    for (int b = 0; b < B; b++) {
        const double *c = coef + 4 * b;
        const float *xb = x + b * x_stride, *eb = e + b * e_stride;
        float *o1 = y1 + b * n, *o2 = y2 ? y2 + b * n : NULL;
        for (long i = 0; i < n; i++) {
            float xi = xb[i], ei = eb[i];   // read both before y1 (which may alias x) is written
            o1[i] = (float)(c[0] * xi + c[1] * ei);
            if (o2) o2[i] = (float)(c[2] * xi + c[3] * ei);
        }
    }
}

void CPU_FN(sub_rows)(float *y, const float *a, const float *c, int B, long n, long a_stride, long c_stride) {
    for (int b = 0; b < B; b++)
        for (long i = 0; i < n; i++) y[b * n + i] = a[b * a_stride + i] - c[b * c_stride + i];
}

void CPU_FN(sq_err_rows)(double *loss, float *grad, const float *out, const float *target, double g, int B, long n,
                     long out_stride) {
    for (int b = 0; b < B; b++) {
        const float *o = out + b * out_stride, *tg = target + b * n;
        float *d = grad ? grad + b * out_stride : NULL;
        double s = 0;
        for (long i = 0; i < n; i++) {
            double e = (double)o[i] - tg[i];
            s += e * e;
            if (d) d[i] = (float)(g * e);
        }
        if (d) memset(d + n, 0, (size_t)(out_stride - n) * sizeof(float));
        loss[b] = s;
    }
}

void CPU_FN(weighted_sq_rows)(double *loss, float *r, const double *w, const double *g, int B, long rows, int dim) {
    for (int b = 0; b < B; b++) {
        float *rb = r + (size_t)b * rows * dim;
        double s = 0;
        for (long k = 0; k < rows; k++)
            for (int i = 0; i < dim; i++) {
                double v = rb[k * dim + i];
                s += w[i] * v * v;
                if (g) rb[k * dim + i] = (float)(g[b] * w[i] * v);
            }
        loss[b] = s;
    }
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

// ---------------------------------------------------------------- optimiser

void CPU_FN(adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps,
               float wd, float bc1, float bc2) {
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

void CPU_FN(ema)(float *e, const float *p, size_t n, float decay) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) e[i] = decay * e[i] + (1 - decay) * p[i];
}

// ---------------------------------------------------------------- the tables

static void attention_fwd_bf16(float *out, float *saved, const float *qkv, int B, int T, int C, int NH) {
    CPU_FN(attention_fwd_with)(gemm_bf16, out, saved, qkv, B, T, C, NH);
}
static void attention_bwd_bf16(float *dqkv, const float *dout, const float *qkv, const float *out,
                               const float *saved, int B, int T, int C, int NH) {
    (void)out;
    CPU_FN(attention_bwd_with)(gemm_bf16, dqkv, dout, qkv, saved, B, T, C, NH);
}

#define CPU_OP_ENTRY(name, params, args) .name = CPU_FN(name),
#define CPU_TABLE_COMMON                                                                                    \
    .device = "cpu", .alloc = cpu_alloc, .free = cpu_free, .sumsq = cpu_sumsq,                              \
    .attention_saved_floats = cpu_attention_saved, DDM_OPS(CPU_OP_ENTRY, DDM_OP_NO_D)

const Ops CPU_CAT(ops_cpu_, CPU_ISA, ) = {.name = "cpu", .precision = "fp32", CPU_TABLE_COMMON};

// The bf16 table is the fp32 one with its matrix multiplies replaced (designated initialisers: the later wins).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
const Ops CPU_CAT(ops_cpu_bf16_, CPU_ISA, ) = {.name = "cpu-bf16", .precision = "bf16", CPU_TABLE_COMMON .gemm = gemm_bf16,
                          .attention_fwd = attention_fwd_bf16, .attention_bwd = attention_bwd_bf16};
#pragma GCC diagnostic pop
