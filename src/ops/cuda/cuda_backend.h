// What the CUDA backend offers beyond the op table, for the GPU tests and `ddm bench --device cuda`: the TF32
// switch, device memory figures and a measured bf16 GEMM peak. Only in a CUDA build (DDM_CUDA); every function
// needs a successful ops_select("cuda", ...) first.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Which GPU the backend starts on: `index` modulo the visible devices (default 0). Call before ops_select; the
// data-parallel start-up (src/dist) passes the process's rank on its machine, so each rank has its own GPU.
void ops_cuda_set_device_index(int index);

// TF32 tensor cores for the fp32 table's `gemm` and attention products: on by default, off with the
// environment variable DDM_CUDA_TF32=0 (strict fp32, what the tight GPU tests use). Returns the previous setting.
int ops_cuda_set_tf32(int on);
int ops_cuda_tf32(void);

// Bytes allocated through the table now and at most since the last reset (the backend's own scratch included,
// cuBLAS's workspace included), and the device's free and total memory as the driver reports them.
void ops_cuda_memory(size_t *in_use, size_t *peak, size_t *free_bytes, size_t *total_bytes);
void ops_cuda_reset_peak(void);

// The device's name ("NVIDIA H200"), multiprocessors and memory, for log lines.
const char *ops_cuda_device_name(void);

// TFLOP/s (2 FLOPs per multiply-add) of an n x n x n cuBLAS GEMM with bf16 inputs and outputs and fp32
// accumulation, on random data, best of `reps` timed calls after warm-up (CUDA events).
double ops_cuda_bf16_gemm_tflops(int n, int reps);

#ifdef __cplusplus
}
#endif
