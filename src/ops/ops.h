// The op interface: every numeric kernel the model, objectives and optimiser need, as a table of
// function pointers over device memory. Model code (src/nn) calls only these, so a CUDA backend is a
// second table, not a second model. Shapes are row-major; B = batch, T = tokens, C = channels.
// Conventions: "fwd" overwrites its outputs; in "bwd", parameter-like gradients (dW, db, dshift,
// dscale, dgate) ACCUMULATE (+=) so several uses can share one buffer, while gradients of
// activations are OVERWRITTEN unless the comment says "accumulates".
#pragma once
#include <stddef.h>

typedef struct Ops {
    const char *name;

    // memory
    float *(*alloc)(size_t n);                                   // zero-filled
    void (*free)(float *p);
    void (*to_device)(float *dst, const float *host_src, size_t n);
    void (*to_host)(float *host_dst, const float *src, size_t n);
    void (*copy)(float *dst, const float *src, size_t n);
    void (*zero)(float *p, size_t n);

    // C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major, op = transpose if trans != 0
    void (*gemm)(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
    void (*add_bias)(float *y, const float *bias, int rows, int cols);   // y[r,:] += bias
    void (*bias_grad)(float *dbias, const float *dy, int rows, int cols); // dbias += sum_r dy[r,:]
    // x[b, r, :] += rows_add[r, :]  (position embedding broadcast over the batch)
    void (*add_broadcast)(float *x, const float *rows_add, int B, long n);

    // out = LN(x) * (1 + scale[b]) + shift[b], LN without affine, eps 1e-6; x [B,T,C];
    // shift/scale point at row b=0 of a [B, mod_stride] modulation tensor.
    void (*ln_modulate_fwd)(float *out, float *mean, float *rstd, const float *x, const float *shift,
                            const float *scale, int B, int T, int C, int mod_stride);
    // dx ACCUMULATES; dshift/dscale accumulate (same strides as shift/scale).
    void (*ln_modulate_bwd)(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                            const float *mean, const float *rstd, const float *scale, int B, int T,
                            int C, int mod_stride);

    // Multi-head self-attention core. qkv [B,T,3C] (q|k|v, heads contiguous inside each), att [B,NH,T,T]
    // keeps the softmax probabilities, out [B,T,C].
    void (*attention_fwd)(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
    // dqkv overwritten; scratch has B*NH*T*T floats.
    void (*attention_bwd)(float *dqkv, float *scratch, const float *dout, const float *qkv,
                          const float *att, int B, int T, int C, int NH);

    void (*gelu_fwd)(float *y, const float *x, long n);                  // tanh approximation
    void (*gelu_bwd)(float *dx, const float *dy, const float *x, long n); // dx may alias dy
    void (*silu_fwd)(float *y, const float *x, long n);
    void (*silu_bwd)(float *dx, const float *dy, const float *x, long n); // dx may alias dy

    // x[b,t,:] += gate[b,:] * branch[b,t,:]; gate points into a [B, gate_stride] tensor.
    void (*gated_residual_fwd)(float *x, const float *gate, const float *branch, int B, int T, int C,
                               int gate_stride);
    // dbranch overwritten; dgate accumulates.
    void (*gated_residual_bwd)(float *dbranch, float *dgate, const float *dx, const float *gate,
                               const float *branch, int B, int T, int C, int gate_stride);

    // img [B,C,H,W] -> tokens [B, (H/p)*(W/p), C*p*p] in (c, kh, kw) order (the conv weight's order)
    void (*patchify)(float *tokens, const float *img, int B, int C, int H, int W, int p);
    void (*patchify_bwd)(float *dimg, const float *dtokens, int B, int C, int H, int W, int p);
    // tokens [B, T, p*p*C] in (kh, kw, c) order -> img [B,C,H,W]  (DiT's unpatchify)
    void (*unpatchify)(float *img, const float *tokens, int B, int C, int H, int W, int p);
    void (*unpatchify_bwd)(float *dtokens, const float *dimg, int B, int C, int H, int W, int p);

    // out[b,:] = table[idx[b],:]; idx lives on the host.
    void (*embed_fwd)(float *out, const float *table, const int *idx, int B, int C);
    void (*embed_bwd)(float *dtable, const float *dout, const int *idx, int B, int C); // accumulates

    // elementwise / reductions
    void (*axpy)(float *y, float a, const float *x, size_t n);  // y += a*x
    void (*scale)(float *x, float s, size_t n);
    double (*sumsq)(const float *x, size_t n);                  // deterministic for a thread count

    // Optimiser. AdamW (decoupled weight decay): p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)
    // with mhat = m / bc1, vhat = v / bc2 (bias corrections 1 - beta^step), as torch.optim.AdamW.
    void (*adamw)(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
                  float beta2, float eps, float wd, float bc1, float bc2);
    void (*ema)(float *ema, const float *p, size_t n, float decay);  // ema = decay*ema + (1-decay)*p
} Ops;

extern const Ops ops_cpu;
// The same with every matrix multiply (gemm, and attention's QK^T, PV and their gradients) in bf16 with
// fp32 accumulation (src/ops/cpu/gemm_bf16.h); needs AVX512_BF16. Everything else is ops_cpu's.
extern const Ops ops_cpu_bf16;
// --precision: "fp32" -> &ops_cpu, "bf16" -> &ops_cpu_bf16. NULL with *err set (one line) for another
// name or for bf16 on a CPU without AVX512_BF16 (no silent fallback).
const Ops *ops_cpu_precision(const char *precision, const char **err);
