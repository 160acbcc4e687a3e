// CNN layers (cnn_kernels.h): the REAL template cnn_kernels_impl.inc compiled for float and double.
#include "eval/cnn_kernels.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

// Rows per block of every fixed-partition reduction (independent of the thread count).
#define RED_BLOCK 512

#define REAL float
#define FN(name) name##_f32
#define GEMM_FN cblas_sgemm
#include "cnn_kernels_impl.inc"
#undef REAL
#undef FN
#undef GEMM_FN

#define REAL double
#define FN(name) name##_f64
#define GEMM_FN cblas_dgemm
#include "cnn_kernels_impl.inc"
#undef REAL
#undef FN
#undef GEMM_FN
