// Multi-head self-attention on the GPU, with the op list's flash-shaped contract: forward writes the output and
// the per-row log-sum-exp of the scaled scores ([B, NH, T], attention_saved_floats); backward recomputes the
// probabilities. First rung of the ladder (docs/cuda.md): the CPU kernel's structure on the GPU. Each head's
// products are cuBLAS strided-batched GEMMs over a chunk of the batch (tensor cores: TF32 or bf16 inputs, fp32
// accumulation), the softmax and the softmax gradient are row kernels, and the T x T matrices live in a scratch
// buffer for one chunk at a time (the chunk is sized so that scratch stays near 1 GiB). The probabilities of
// backward are computed exactly as forward's (same products, same kernel), as on the CPU.
#include <math.h>
#include "ops/cuda/cuda_common.cuh"

// Scratch budget for one chunk's T x T matrices (each of S and dP).
static const size_t ATT_CHUNK_BYTES = (size_t)1 << 30;

extern "C" size_t cuda_attention_saved(int B, int T, int C, int NH) {
    (void)C;
    return (size_t)B * NH * T;
}

// Rows of S are laid out [NH][Bc][T] (head-major: each head's batched GEMM writes one contiguous block); row r
// of head h, sample b0 + bi, query i has its log-sum-exp at ((b0 + bi) * NH + h) * T + i.
__device__ __forceinline__ long lse_index(long r, int Bc, int T, int NH, int b0) {
    long i = r % T, hb = r / T, bi = hb % Bc, h = hb / Bc;
    return ((b0 + bi) * NH + h) * (long)T + i;
}

// Softmax of each row of S in place, as the CPU computes it: the row's max, exp(s - max) rounded to float, their
// sum in double, a float reciprocal. One warp per row. lse (may be NULL) gets max + log(sum); p16 (may be NULL)
// a bf16 copy of P for the bf16 products.
__global__ void k_softmax_rows(float *S, __nv_bfloat16 *p16, float *lse, long rows, int T, int Bc, int NH, int b0) {
    int lane = threadIdx.x & 31;
    long warps = (long)gridDim.x * (blockDim.x / 32);
    for (long r = (blockIdx.x * (long)blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
        float *row = S + r * T;
        float mx = -INFINITY;
        for (int j = lane; j < T; j += 32) mx = fmaxf(mx, row[j]);
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        double s = 0;
        for (int j = lane; j < T; j += 32) {
            float e = expf(row[j] - mx);
            row[j] = e;
            s += e;
        }
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        float inv = (float)(1.0 / s);
        for (int j = lane; j < T; j += 32) {
            float p = row[j] * inv;
            row[j] = p;
            if (p16) p16[r * T + j] = __float2bfloat16_rn(p);
        }
        if (lse && lane == 0) lse[lse_index(r, Bc, T, NH, b0)] = (float)(mx + log(s));
    }
}

// dS = P * (dP - rowsum(P * dP)) in place over dP (the row sum in double, as the CPU); ds16 (may be NULL) a bf16 copy.
__global__ void k_softmax_grad_rows(float *dP, __nv_bfloat16 *ds16, const float *P, long rows, int T) {
    int lane = threadIdx.x & 31;
    long warps = (long)gridDim.x * (blockDim.x / 32);
    for (long r = (blockIdx.x * (long)blockDim.x + threadIdx.x) / 32; r < rows; r += warps) {
        const float *pr = P + r * T;
        float *dr = dP + r * T;
        double s = 0;
        for (int j = lane; j < T; j += 32) s += (double)pr[j] * dr[j];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        for (int j = lane; j < T; j += 32) {
            float d = pr[j] * (float)(dr[j] - s);
            dr[j] = d;
            if (ds16) ds16[r * T + j] = __float2bfloat16_rn(d);
        }
    }
}

// The chunk of the batch whose T x T matrices fit the budget.
static int chunk_of(int B, int T, int NH) {
    size_t per = (size_t)NH * T * T * sizeof(float);
    size_t c = per ? ATT_CHUNK_BYTES / per : (size_t)B;
    if (c < 1) c = 1;
    return c < (size_t)B ? (int)c : B;
}

// Everything one precision needs: where Q, K, V and dY are read from (fp32 as given, or bf16 copies of the
// chunk), and the element size of the GEMM inputs.
typedef struct {
    int bf16, tf32;
    const void *qkv;      // chunk's qkv [Bc, T, 3C], fp32 or bf16
    const void *dout;     // chunk's dout [Bc, T, C] (backward)
    const void *P;        // probabilities as the GEMMs read them: fp32 S or its bf16 copy
    const void *dS;       // the same for dS
    size_t esize;
} AttIn;

static const char *elem(const void *base, size_t esize, long offset) { return (const char *)base + esize * offset; }

static void scores(const AttIn *in, float *S, int Bc, int T, int C, int NH, float sc) {
    int hd = C / NH;
    for (int h = 0; h < NH; h++) {
        const char *q = elem(in->qkv, in->esize, (long)h * hd), *k = elem(in->qkv, in->esize, (long)C + h * hd);
        // S_h[b] = sc * Q_b K_b^T  [T, T]
        cuda_gemm_rm(in->bf16, in->tf32, 0, 1, T, T, hd, sc, q, 3 * C, (long long)T * 3 * C, k, 3 * C,
                     (long long)T * 3 * C, 0.0f, S + (size_t)h * Bc * T * T, T, (long long)T * T, Bc);
    }
}

static void forward_chunk(int bf16, float *out, float *lse, const float *qkv, int b0, int Bc, int T, int C, int NH) {
    int hd = C / NH;
    float sc = (float)(1.0 / sqrt((double)hd));
    long rows = (long)NH * Bc * T;
    AttIn in = {bf16, cuda_use_tf32(), qkv + (size_t)b0 * T * 3 * C, NULL, NULL, NULL, sizeof(float)};
    __nv_bfloat16 *p16 = NULL;
    if (bf16) {
        __nv_bfloat16 *q16 = (__nv_bfloat16 *)cuda_scratch(SCRATCH_ATT_QKV16, (size_t)Bc * T * 3 * C * 2);
        cuda_to_bf16(q16, (const float *)in.qkv, (long)Bc * T, 3L * C, 3L * C);
        in.qkv = q16;
        in.esize = 2;
        p16 = (__nv_bfloat16 *)cuda_scratch(SCRATCH_ATT_P16, (size_t)rows * T * 2);
    }
    float *S = (float *)cuda_scratch(SCRATCH_ATT_S, (size_t)rows * T * sizeof(float));
    scores(&in, S, Bc, T, C, NH, sc);
    k_softmax_rows<<<cuda_blocks((size_t)rows * 32, 256), 256>>>(S, p16, lse, rows, T, Bc, NH, b0);
    LAUNCH_CHECK();
    in.P = bf16 ? (const void *)p16 : (const void *)S;
    for (int h = 0; h < NH; h++) {
        const char *v = elem(in.qkv, in.esize, 2L * C + h * hd);
        // Y_b[:, h] = P_h[b] V_b  [T, hd], written into out's head columns
        cuda_gemm_rm(bf16, in.tf32, 0, 0, T, hd, T, 1.0f, elem(in.P, in.esize, (long)h * Bc * T * T), T,
                     (long long)T * T, v, 3 * C, (long long)T * 3 * C, 0.0f, out + (size_t)b0 * T * C + h * hd, C,
                     (long long)T * C, Bc);
    }
}

static void attention_fwd(int bf16, float *out, float *saved, const float *qkv, int B, int T, int C, int NH) {
    if (B <= 0 || T <= 0) return;
    int Bc = chunk_of(B, T, NH);
    for (int b0 = 0; b0 < B; b0 += Bc) forward_chunk(bf16, out, saved, qkv, b0, B - b0 < Bc ? B - b0 : Bc, T, C, NH);
}

static void backward_chunk(int bf16, float *dqkv, const float *dout, const float *qkv, int b0, int Bc, int T, int C,
                           int NH) {
    int hd = C / NH;
    float sc = (float)(1.0 / sqrt((double)hd));
    long rows = (long)NH * Bc * T;
    AttIn in = {bf16, cuda_use_tf32(), qkv + (size_t)b0 * T * 3 * C, dout + (size_t)b0 * T * C, NULL, NULL,
                sizeof(float)};
    __nv_bfloat16 *p16 = NULL, *ds16 = NULL;
    if (bf16) {
        __nv_bfloat16 *q16 = (__nv_bfloat16 *)cuda_scratch(SCRATCH_ATT_QKV16, (size_t)Bc * T * 3 * C * 2);
        __nv_bfloat16 *d16 = (__nv_bfloat16 *)cuda_scratch(SCRATCH_ATT_DO16, (size_t)Bc * T * C * 2);
        cuda_to_bf16(q16, (const float *)in.qkv, (long)Bc * T, 3L * C, 3L * C);
        cuda_to_bf16(d16, (const float *)in.dout, (long)Bc * T, C, C);
        in.qkv = q16;
        in.dout = d16;
        in.esize = 2;
        // one bf16 buffer for P, then (once dV is formed) for dS
        p16 = ds16 = (__nv_bfloat16 *)cuda_scratch(SCRATCH_ATT_P16, (size_t)rows * T * 2);
    }
    float *S = (float *)cuda_scratch(SCRATCH_ATT_S, (size_t)rows * T * sizeof(float));
    float *dP = (float *)cuda_scratch(SCRATCH_ATT_DP, (size_t)rows * T * sizeof(float));
    scores(&in, S, Bc, T, C, NH, sc);
    k_softmax_rows<<<cuda_blocks((size_t)rows * 32, 256), 256>>>(S, p16, NULL, rows, T, Bc, NH, b0);
    LAUNCH_CHECK();
    in.P = bf16 ? (const void *)p16 : (const void *)S;
    float *dq = dqkv + (size_t)b0 * T * 3 * C;
    long long s3 = (long long)T * 3 * C, s1 = (long long)T * C, sT = (long long)T * T;
    for (int h = 0; h < NH; h++) {
        const char *dy = elem(in.dout, in.esize, (long)h * hd), *v = elem(in.qkv, in.esize, 2L * C + h * hd);
        const char *P = elem(in.P, in.esize, (long)h * Bc * T * T);
        // dP = dY V^T [T, T];  dV = P^T dY [T, hd]
        cuda_gemm_rm(bf16, in.tf32, 0, 1, T, T, hd, 1.0f, dy, C, s1, v, 3 * C, s3, 0.0f, dP + (size_t)h * Bc * T * T, T,
                     sT, Bc);
        cuda_gemm_rm(bf16, in.tf32, 1, 0, T, hd, T, 1.0f, P, T, sT, dy, C, s1, 0.0f, dq + 2L * C + h * hd, 3 * C, s3, Bc);
    }
    k_softmax_grad_rows<<<cuda_blocks((size_t)rows * 32, 256), 256>>>(dP, ds16, S, rows, T);
    LAUNCH_CHECK();
    in.dS = bf16 ? (const void *)ds16 : (const void *)dP;
    for (int h = 0; h < NH; h++) {
        const char *q = elem(in.qkv, in.esize, (long)h * hd), *k = elem(in.qkv, in.esize, (long)C + h * hd);
        const char *dS = elem(in.dS, in.esize, (long)h * Bc * T * T);
        // dQ = sc dS K;  dK = sc dS^T Q  [T, hd]
        cuda_gemm_rm(bf16, in.tf32, 0, 0, T, hd, T, sc, dS, T, sT, k, 3 * C, s3, 0.0f, dq + h * hd, 3 * C, s3, Bc);
        cuda_gemm_rm(bf16, in.tf32, 1, 0, T, hd, T, sc, dS, T, sT, q, 3 * C, s3, 0.0f, dq + (long)C + h * hd, 3 * C, s3,
                     Bc);
    }
}

static void attention_bwd(int bf16, float *dqkv, const float *dout, const float *qkv, int B, int T, int C, int NH) {
    if (B <= 0 || T <= 0) return;
    int Bc = chunk_of(B, T, NH);
    for (int b0 = 0; b0 < B; b0 += Bc) backward_chunk(bf16, dqkv, dout, qkv, b0, B - b0 < Bc ? B - b0 : Bc, T, C, NH);
}

extern "C" void cuda_attention_fwd(float *out, float *saved, const float *qkv, int B, int T, int C, int NH) {
    attention_fwd(0, out, saved, qkv, B, T, C, NH);
}
extern "C" void cuda_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *out,
                                   const float *saved, int B, int T, int C, int NH) {
    (void)out; (void)saved;   // the probabilities are recomputed exactly (same products, same kernel as forward)
    attention_bwd(0, dqkv, dout, qkv, B, T, C, NH);
}
extern "C" void cuda_bf16_attention_fwd(float *out, float *saved, const float *qkv, int B, int T, int C, int NH) {
    attention_fwd(1, out, saved, qkv, B, T, C, NH);
}
extern "C" void cuda_bf16_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *out,
                                        const float *saved, int B, int T, int C, int NH) {
    (void)out; (void)saved;
    attention_bwd(1, dqkv, dout, qkv, B, T, C, NH);
}
