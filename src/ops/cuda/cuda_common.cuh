// Shared by the CUDA backend's .cu files: error checks that name file and line, the cuBLAS handle, the
// backend's scratch buffers, launch sizes and the row-major GEMM used by `gemm`, `gemm_fp32` and attention.
// Everything runs on the legacy default stream: ops, uploads and downloads are ordered with each other, so a
// host buffer handed to `upload` may be reused as soon as it returns, and one stream keeps cuBLAS deterministic.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>

extern "C" {
#include "common.h"
}
#include "ops/cuda/cuda_ops.h"

#define CUDA_CHECK(call)                                                                                          \
    do {                                                                                                          \
        cudaError_t e_ = (call);                                                                                  \
        if (e_ != cudaSuccess) ddm_fatal("cuda: %s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
    } while (0)
#define CUBLAS_CHECK(call)                                                                                        \
    do {                                                                                                          \
        cublasStatus_t s_ = (call);                                                                               \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                          \
            ddm_fatal("cuda: %s:%d: %s: %s", __FILE__, __LINE__, #call, cublasGetStatusString(s_));             \
    } while (0)
// After every kernel launch: a bad launch configuration is reported where it happened, not at the next sync.
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

// The backend's scratch buffers, one per use, grown on demand (never shrunk) and reused by every later call:
// safe because every op is ordered on one stream.
enum {
    SCRATCH_GEMM_A,     // bf16 copy of a GEMM's A
    SCRATCH_GEMM_B,     // bf16 copy of a GEMM's B
    SCRATCH_ATT_S,      // attention scores / probabilities [NH, Bc, T, T] fp32
    SCRATCH_ATT_DP,     // attention dP / dS [NH, Bc, T, T] fp32
    SCRATCH_ATT_P16,    // bf16 P (and dS in backward)
    SCRATCH_ATT_QKV16,  // bf16 qkv of a batch chunk
    SCRATCH_ATT_DO16,   // bf16 dout of a batch chunk
    SCRATCH_REDUCE,     // partial sums of the reductions
    SCRATCH_COPY,       // staging for copies whose source and destination overlap
    SCRATCH_COUNT
};
void *cuda_scratch(int slot, size_t bytes);

cublasHandle_t cuda_blas(void);
int cuda_use_tf32(void);

// Blocks for a grid-stride loop over n elements (capped: every kernel below loops).
static inline unsigned cuda_blocks(size_t n, int threads) {
    size_t b = (n + (size_t)threads - 1) / (size_t)threads;
    if (b > 65536) b = 65536;
    return b ? (unsigned)b : 1u;
}

// Row-major C[M,N] (+ batch strides) = alpha op(A) op(B) + beta C with A, B fp32 (bf16_inputs = 0) or bf16
// (bf16_inputs = 1) as stored, fp32 C, fp32 accumulation; tf32 = 1 lets fp32 inputs use TF32 tensor cores.
// Row-major is cuBLAS's column-major with the operands swapped: C^T = op(B)^T op(A)^T. batch = 1: one product.
void cuda_gemm_rm(int bf16_inputs, int tf32, int transA, int transB, int M, int N, int K, float alpha, const void *A,
                  int lda, long long strideA, const void *B, int ldb, long long strideB, float beta, float *C, int ldc,
                  long long strideC, int batch);

// dst[r, c] = bf16(src[r * ld + c]) for r < rows, c < cols: a packed bf16 copy (round to nearest even).
void cuda_to_bf16(__nv_bfloat16 *dst, const float *src, long rows, long cols, long ld);
