// bf16 GEMM for CPUs with AVX512_BF16 (VDPBF16PS): the cblas_sgemm contract on fp32 data, with A and
// B rounded to bfloat16 while they are packed and the products summed in fp32. Used by the bf16
// precision option (fp32 master weights, bf16 matrix multiplies); see docs/performance.md.
#pragma once
#include <stdint.h>

// 1 if this CPU (and OS) has AVX-512 F/BW and AVX512_BF16, checked at run time: the kernels are
// compiled for those instructions whatever the compiler flags, and must not run without them.
int gemm_bf16_supported(void);

// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major with leading dimensions, op =
// transpose if trans != 0 (the Ops gemm contract). op(A) and op(B) are rounded to bf16 (round to nearest
// even, as VCVTNEPS2BF16), products accumulate in fp32 (results below 2^-126 flush to zero, as
// VDPBF16PS does). beta == 0 does not read C. OpenMP-parallel over
// blocks of C (serial inside a parallel region); the summation order does not depend on the thread
// count. DDM_BUG unless gemm_bf16_supported().
void gemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

// The conversion the packing does, on n values, through the same instruction (for the tests).
// DDM_BUG unless gemm_bf16_supported().
void bf16_round_vec(uint16_t *dst, const float *src, long n);
// A portable model of that conversion: round to nearest even; NaN stays NaN (quietened, sign and top
// payload kept); inf stays inf; finite values that round past the largest bf16 become inf; fp32
// denormals become a zero of the same sign (the instruction treats denormal inputs as zero).
uint16_t bf16_from_float(float x);
float bf16_to_float(uint16_t h);
