// The op interface: every numeric kernel the model, objectives, losses and optimiser need, as a table of
// function pointers over DEVICE memory. This file is the contract between the code above it (src/nn,
// src/loss, src/tok, src/train, src/infer) and a backend (src/ops/cpu, src/ops/cuda): a backend implements
// exactly the ops listed here, and nothing above this line touches device memory except through them.
// docs/architecture.md explains the layers and how to add a backend.
//
// Device memory is opaque to the host: pointers from `alloc` may only be passed to ops of the same table
// (pointer arithmetic inside an allocation is allowed); the host reads or writes it only with `upload` and
// `download` (the cpu-isolated table makes any other access crash). Shapes are row-major; B = batch,
// T = tokens, C = channels. Conventions: outputs are overwritten; in "bwd" ops, parameter-like gradients
// (dW, db, dshift, dscale, dgate, dtable) ACCUMULATE (+=) so several uses can share one buffer, while
// gradients of activations are OVERWRITTEN unless the comment says "accumulates". Ops are asynchronous
// with respect to the host except `download`, `sumsq` and `synchronize` (a timer must synchronize).
#pragma once
#include <stddef.h>

// The op list, written once. DDM_OPS(X, DEV) expands X(name, params, args) for every op that returns nothing;
// `params` is its parameter list, `args` forwards those parameters with every device pointer wrapped in DEV(...),
// so that a table wrapping another one (the profiler, cpu-isolated) can act on device pointers. The table
// (struct Ops), the profiler's wrappers and names, and cpu-isolated are all generated from this list.
#define DDM_OPS(X, DEV)                                                                                                  \
    /* ---- memory: the only ways between host and device (bytes) ---- */                                           \
    X(upload, (void *dst, const void *host_src, size_t bytes), (DEV(dst), host_src, bytes))                             \
    X(download, (void *host_dst, const void *src, size_t bytes), (host_dst, DEV(src), bytes))                          \
    X(synchronize, (void), ())                                /* wait for every op issued so far */                 \
    X(copy, (REAL *dst, const REAL *src, size_t n), (DEV(dst), DEV(src), n))                                           \
    X(zero, (REAL *p, size_t n), (DEV(p), n))                                                                         \
    /* ---- matrix products ---- */                                                                                  \
    /* C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, op = transpose if trans != 0; the table's precision */         \
    X(gemm, (int transA, int transB, int M, int N, int K, REAL alpha, const REAL *A, int lda, const REAL *B,       \
             int ldb, REAL beta, REAL *C, int ldc),                                                                \
      (transA, transB, M, N, K, alpha, DEV(A), lda, DEV(B), ldb, beta, DEV(C), ldc))                                       \
    /* the same, fp32 in every precision: the losses' and the tokenizer's products (a Gram's distances cancel) */    \
    X(gemm_fp32, (int transA, int transB, int M, int N, int K, REAL alpha, const REAL *A, int lda,               \
                  const REAL *B, int ldb, REAL beta, REAL *C, int ldc),                                           \
      (transA, transB, M, N, K, alpha, DEV(A), lda, DEV(B), ldb, beta, DEV(C), ldc))                                       \
    /* C[N,N] = alpha A A^T + beta C, A [N,K]; only the upper triangle (j >= i) is defined; fp32 */                  \
    X(syrk, (int N, int K, REAL alpha, const REAL *A, int lda, REAL beta, REAL *C, int ldc),                     \
      (N, K, alpha, DEV(A), lda, beta, DEV(C), ldc))                                                                     \
    /* ---- transformer layers ---- */                                                                               \
    X(add_bias, (REAL *y, const REAL *bias, int rows, int cols), (DEV(y), DEV(bias), rows, cols)) /* y[r,:] += b */   \
    X(bias_grad, (REAL *dbias, const REAL *dy, int rows, int cols), (DEV(dbias), DEV(dy), rows, cols)) /* += sum_r */ \
    /* x[b, i] += rows_add[i], i < n (position embedding broadcast over the batch) */                                \
    X(add_broadcast, (REAL *x, const REAL *rows_add, int B, long n), (DEV(x), DEV(rows_add), B, n))                    \
    /* out = LN(x) * (1 + scale[b]) + shift[b], LN without affine, eps 1e-6; x [B,T,C]; shift/scale point at */      \
    /* row b = 0 of a [B, mod_stride] modulation tensor; mean, rstd [B,T] are kept for backward */                   \
    X(ln_modulate_fwd, (REAL *out, REAL *mean, REAL *rstd, const REAL *x, const REAL *shift,                    \
                        const REAL *scale, int B, int T, int C, int mod_stride),                                    \
      (DEV(out), DEV(mean), DEV(rstd), DEV(x), DEV(shift), DEV(scale), B, T, C, mod_stride))                                     \
    /* dx ACCUMULATES; dshift/dscale accumulate (same strides as shift/scale) */                                     \
    X(ln_modulate_bwd, (REAL *dx, REAL *dshift, REAL *dscale, const REAL *dout, const REAL *x,                  \
                        const REAL *mean, const REAL *rstd, const REAL *scale, int B, int T, int C,               \
                        int mod_stride),                                                                             \
      (DEV(dx), DEV(dshift), DEV(dscale), DEV(dout), DEV(x), DEV(mean), DEV(rstd), DEV(scale), B, T, C, mod_stride))                 \
    /* Multi-head self-attention. qkv [B,T,3C] (q|k|v, heads contiguous inside each), out [B,T,C]. `saved` */       \
    /* holds attention_saved_floats(B,T,C,NH) floats of the backend's choosing: a flash-style backend keeps only */  \
    /* the per-row log-sum-exp of the scaled scores (O(B NH T)) and recomputes the rest in backward; the CPU keeps */ \
    /* the probabilities too (measured faster there, docs/performance.md). Its last B*NH*T floats are always the */ \
    /* log-sum-exp (what tests compare across backends); the model never reads it. */                               \
    X(attention_fwd, (REAL *out, REAL *saved, const REAL *qkv, int B, int T, int C, int NH),                     \
      (DEV(out), DEV(saved), DEV(qkv), B, T, C, NH))                                                                       \
    X(attention_bwd, (REAL *dqkv, const REAL *dout, const REAL *qkv, const REAL *out, const REAL *saved,       \
                      int B, int T, int C, int NH),                                                                  \
      (DEV(dqkv), DEV(dout), DEV(qkv), DEV(out), DEV(saved), B, T, C, NH))                                                     \
    X(gelu_fwd, (REAL *y, const REAL *x, long n), (DEV(y), DEV(x), n)) /* tanh approximation */                       \
    X(gelu_bwd, (REAL *dx, const REAL *dy, const REAL *x, long n), (DEV(dx), DEV(dy), DEV(x), n)) /* dx may alias dy */\
    X(silu_fwd, (REAL *y, const REAL *x, long n), (DEV(y), DEV(x), n))                                                 \
    X(silu_bwd, (REAL *dx, const REAL *dy, const REAL *x, long n), (DEV(dx), DEV(dy), DEV(x), n)) /* dx may alias dy */\
    /* x[b,t,:] += gate[b,:] * branch[b,t,:]; gate points into a [B, gate_stride] tensor */                          \
    X(gated_residual_fwd, (REAL *x, const REAL *gate, const REAL *branch, int B, int T, int C, int gate_stride),  \
      (DEV(x), DEV(gate), DEV(branch), B, T, C, gate_stride))                                                              \
    /* dbranch overwritten; dgate accumulates */                                                                     \
    X(gated_residual_bwd, (REAL *dbranch, REAL *dgate, const REAL *dx, const REAL *gate, const REAL *branch,   \
                           int B, int T, int C, int gate_stride),                                                    \
      (DEV(dbranch), DEV(dgate), DEV(dx), DEV(gate), DEV(branch), B, T, C, gate_stride))                                       \
    /* img [B,C,H,W] -> tokens [B, (H/p)*(W/p), C*p*p] in (c, kh, kw) order (the conv weight's, and the PCA */      \
    /* tokenizer's patch order); patchify_bwd is its exact inverse (a scatter, overwriting dimg) */                  \
    X(patchify, (REAL *tokens, const REAL *img, int B, int C, int H, int W, int p), (DEV(tokens), DEV(img), B, C, H, W, p)) \
    X(patchify_bwd, (REAL *dimg, const REAL *dtokens, int B, int C, int H, int W, int p),                          \
      (DEV(dimg), DEV(dtokens), B, C, H, W, p))                                                                          \
    /* tokens [B, T, p*p*C] in (kh, kw, c) order -> img [B,C,H,W] (DiT's unpatchify), and its inverse */             \
    X(unpatchify, (REAL *img, const REAL *tokens, int B, int C, int H, int W, int p), (DEV(img), DEV(tokens), B, C, H, W, p)) \
    X(unpatchify_bwd, (REAL *dtokens, const REAL *dimg, int B, int C, int H, int W, int p),                        \
      (DEV(dtokens), DEV(dimg), B, C, H, W, p))                                                                          \
    /* out [B, 256] = DiT's sinusoidal timestep embedding of t [B] (cos half first, max period 10000) */             \
    X(timestep_embed, (REAL *out, const REAL *t, int B), (DEV(out), DEV(t), B))                                        \
    /* out[b,:] = table[idx[b],:]; idx [B] is device memory, each in range (checked by the caller on the host) */    \
    X(embed_fwd, (REAL *out, const REAL *table, const int *idx, int B, int C), (DEV(out), DEV(table), DEV(idx), B, C))  \
    X(embed_bwd, (REAL *dtable, const REAL *dout, const int *idx, int B, int C),                                   \
      (DEV(dtable), DEV(dout), DEV(idx), B, C)) /* accumulates */                                                          \
    /* ---- element-wise ---- */                                                                                     \
    X(axpy, (REAL *y, REAL a, const REAL *x, size_t n), (DEV(y), a, DEV(x), n)) /* y += a x */                       \
    X(scale, (REAL *x, REAL s, size_t n), (DEV(x), s, n))                                                            \
    X(scale_cols, (REAL *x, const REAL *s, long rows, int cols), (DEV(x), DEV(s), rows, cols)) /* x[r,c] *= s[c] */    \
    /* y[b, i<n] = x[b, i] (row strides y_stride >= n, x_stride); with zero_tail also y[b, n..y_stride) = 0 */       \
    X(copy_rows, (REAL *y, long y_stride, const REAL *x, long x_stride, int B, long n, int zero_tail),             \
      (DEV(y), y_stride, DEV(x), x_stride, B, n, zero_tail))                                                             \
    /* ---- objectives: per-sample coefficients in double, computed on the host and uploaded ---- */                 \
    /* y1[b,i] = (REAL)(c[b,0] x[b,i] + c[b,1] e[b,i]); y2 (NULL = skip) = (REAL)(c[b,2] x + c[b,3] e); */         \
    /* i < n; y1, y2 have row stride n, x x_stride, e e_stride; coef [B,4]; y1 may alias x */                       \
    X(affine_rows, (REAL *y1, REAL *y2, const REAL *x, const REAL *e, const double *coef, int B, long n,         \
                    long x_stride, long e_stride),                                                                   \
      (DEV(y1), DEV(y2), DEV(x), DEV(e), DEV(coef), B, n, x_stride, e_stride))                                                 \
    /* y[b,i] = a[b,i] - c[b,i], i < n; y row stride n, a a_stride, c c_stride */                                    \
    X(sub_rows, (REAL *y, const REAL *a, const REAL *c, int B, long n, long a_stride, long c_stride),             \
      (DEV(y), DEV(a), DEV(c), B, n, a_stride, c_stride))                                                                  \
    /* loss[b] = sum_{i<n} e^2 with e = (double)out[b,i] - target[b,i] (in i order, double); if grad != NULL, */    \
    /* grad[b,i] = (REAL)(g e) for i < n and 0 for n <= i < out_stride; out and grad have row stride */            \
    /* out_stride (learned-sigma channels past n), target n */                                                       \
    X(sq_err_rows, (double *loss, REAL *grad, const REAL *out, const REAL *target, double g, int B, long n,       \
                    long out_stride),                                                                                \
      (DEV(loss), DEV(grad), DEV(out), DEV(target), g, B, n, out_stride))                                                    \
    /* r [B, rows, dim]: loss[b] = sum_k sum_i w[i] r[b,k,i]^2 (double, k then i order); then, if g != NULL, */        \
    /* r[b,k,i] = (REAL)(g[b] * w[i] * r[b,k,i]) (the gradient of a weighted basis loss) */                         \
    X(weighted_sq_rows, (double *loss, REAL *r, const double *w, const double *g, int B, long rows, int dim),         \
      (DEV(loss), DEV(r), DEV(w), DEV(g), B, rows, dim))                                                                       \
    /* ---- optimiser ---- */                                                                                        \
    /* AdamW (decoupled weight decay, as torch.optim.AdamW): p -= lr wd p; p -= lr mhat / (sqrt(vhat) + eps), */     \
    /* mhat = m / bc1, vhat = v / bc2 (bias corrections 1 - beta^step) */                                            \
    X(adamw, (REAL *p, const REAL *g, REAL *m, REAL *v, size_t n, REAL lr, REAL beta1, REAL beta2, REAL eps, \
              REAL wd, REAL bc1, REAL bc2),                                                                       \
      (DEV(p), DEV(g), DEV(m), DEV(v), n, lr, beta1, beta2, eps, wd, bc1, bc2))                                              \
    X(ema, (REAL *ema, const REAL *p, size_t n, REAL decay), (DEV(ema), DEV(p), n, decay)) /* ema = d ema + (1-d) p */

#define DDM_OP_FIELD(name, params, args) void(*name) params;
#define DDM_OP_NO_D(p) p

// The op parameters are written with REAL for the tensors' element type: float in the table (the CPU backend
// also instantiates its layer kernels in double for the gradient tests, src/ops/cpu/cpu_kernels.h).
#pragma push_macro("REAL")
#undef REAL
#define REAL float
typedef struct Ops {
    const char *name;       // "cpu", "cpu-bf16", "cpu-isolated", ...
    const char *device;     // the --device name of the table ("cpu", "cpu-isolated", "cuda")
    const char *precision;  // "fp32" or "bf16": what `gemm` and attention compute in
    // Written by hand in each table (they return a value):
    void *(*alloc)(size_t bytes);   // zero-filled device memory, 64-byte aligned at least
    void (*free)(void *p);          // NULL is allowed
    // sum of x[i]^2, in a fixed order (deterministic for a table and thread count), downloaded: synchronises
    double (*sumsq)(const float *x, size_t n);
    // floats attention_fwd keeps for attention_bwd per call of that shape (a pure function of the shape, linear in B)
    size_t (*attention_saved_floats)(int B, int T, int C, int NH);
    DDM_OPS(DDM_OP_FIELD, DDM_OP_NO_D)
} Ops;
#pragma pop_macro("REAL")

// Typed helpers over the byte interface.
static inline float *ops_alloc_f32(const Ops *o, size_t n) { return (float *)o->alloc(n * sizeof(float)); }
static inline void ops_upload_f32(const Ops *o, float *dst, const float *src, size_t n) {
    o->upload(dst, src, n * sizeof(float));
}
static inline void ops_download_f32(const Ops *o, float *dst, const float *src, size_t n) {
    o->download(dst, src, n * sizeof(float));
}

// The devices of this build, for --device: "cpu" and "cpu-isolated" always (and "cuda" in a CUDA build).
// ops_select returns the table of a device at a precision ("fp32" or "bf16"), or NULL with *err set to one
// line: an unknown device (naming the devices of this build), a device this build lacks, an unknown precision,
// or bf16 on a CPU without AVX512_BF16 (no silent fallback).
const Ops *ops_select(const char *device, const char *precision, const char **err);
// "auto" -> the fastest precision the device has ("bf16" where it can, else "fp32"); any other name unchanged.
const char *ops_resolve_precision(const char *device, const char *precision);
// "cpu, cpu-isolated" (and ", cuda"): the devices this build has.
const char *ops_device_names(void);
// The default device of a command when --device is not given: $DDM_DEVICE if set, else "cpu".
const char *ops_default_device(void);
// The device of a table as logs name it: the CPU devices with their kernels' level ("cpu, kernels x86-64-v4
// (AVX-512)"), so that a log says which build of the kernels computed it.
const char *ops_device_label(const Ops *ops);

// The CPU tables: OpenBLAS GEMMs, OpenMP loops, device memory is host memory; ops_cpu_bf16 with every `gemm` and
// attention product in bf16 (AVX512_BF16). Their kernels are those of the x86-64 level chosen at start-up, the
// highest this CPU has or $DDM_CPU_ISA (src/ops/cpu/cpu_dispatch.c); ops_cpu and ops_cpu_bf16 read as the two
// tables, so that callers need not know there are several. ops_cpu_table stops with one line if there is no
// usable level (ops_select reports it as an error first).
const Ops *ops_cpu_table(int bf16);
#define ops_cpu (*ops_cpu_table(0))
#define ops_cpu_bf16 (*ops_cpu_table(1))
// The chosen level as logs name it ("x86-64-v4 (AVX-512)"); and NULL, or why no level can be used (one line).
const char *ops_cpu_isa(void);
const char *ops_cpu_isa_error(void);
