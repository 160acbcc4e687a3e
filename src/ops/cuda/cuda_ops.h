// The CUDA backend's functions by name, shared by the table (cuda_table.c, C) and the kernels (*.cu, CUDA C++):
// op `name` is the function cuda_name, declared here from ops.h's op list, so a kernel file whose definition
// does not match the list's signature fails to compile (two C functions of one name), and a table entry
// without a definition fails to link. Only src/ops/cuda includes this header.
#pragma once
#include <stddef.h>
#include "ops/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma push_macro("REAL")
#undef REAL
#define REAL float
#define DDM_CUDA_DECLARE(name, params, args) void cuda_##name params;
DDM_OPS(DDM_CUDA_DECLARE, DDM_OP_NO_D)
#undef DDM_CUDA_DECLARE
#pragma pop_macro("REAL")

// The bf16 table's replacements: operands rounded to bf16 (round to nearest even), products summed in fp32.
void cuda_bf16_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc);
void cuda_bf16_attention_fwd(float *out, float *saved, const float *qkv, int B, int T, int C, int NH);
void cuda_bf16_attention_bwd(float *dqkv, const float *dout, const float *qkv, const float *out, const float *saved,
                             int B, int T, int C, int NH);

// The hand-written entries of the table.
void *cuda_alloc(size_t bytes);
void cuda_free(void *p);
double cuda_sumsq(const float *x, size_t n);
size_t cuda_attention_saved(int B, int T, int C, int NH);

// Starts the runtime and cuBLAS on the first call (later calls return the first answer): NULL when a GPU is
// usable, else one line saying why not. Prints the device line to stderr once, on success.
const char *cuda_backend_init(const char *precision);

#ifdef __cplusplus
}
#endif
