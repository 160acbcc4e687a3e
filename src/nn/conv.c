// CNN layers (conv.h): the REAL template conv_impl.inc compiled for float and double.
#include "nn/conv.h"
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
#include "conv_impl.inc"
#undef REAL
#undef FN
#undef GEMM_FN

#define REAL double
#define FN(name) name##_f64
#define GEMM_FN cblas_dgemm
#include "conv_impl.inc"
#undef REAL
#undef FN
#undef GEMM_FN
