// The evaluation networks' CPU kernels — not behind the op table (src/ops): the domain classifier and
// Inception-v3 that FD-CNN / FID are computed with run on the host, whatever device trained the model.
// CNN layers for the domain classifier (src/eval/classifier.c): conv2d (stride 1, 'same' padding,
// im2col + GEMM), batchnorm2d, ReLU, 2x2 max-pool, global average pool and linear, each with its
// backward pass; and, forward only, for Inception-v3 (src/eval/inception.c): convolutions of any
// KH x KW kernel, stride and padding on pre-packed weights, writing into a channel slice of a wider
// output (the branches of an Inception block), and k x k max / average pools. Written once over REAL
// (cnn_kernels_impl.inc) and compiled for float (_f32, training) and double (_f64, the finite-difference tests).
//
// Activations are channels-last, x[N, H, W, C] (one row of C values per pixel), so a convolution is
// one GEMM over all N*H*W pixels and batchnorm reduces over rows. Conv weights keep PyTorch's layout
// [Cout, Cin, K, K]; linear weights [out, in].
// Conventions (as in ops.h): forward overwrites its outputs; in backward, parameter gradients (dw,
// db, dgamma, dbeta) ACCUMULATE (+=) and input gradients are OVERWRITTEN.
// Every reduction runs over a fixed partition of the rows in a fixed order, and parallel loops only
// split independent outputs, so results do not depend on the OpenMP thread count (GEMMs are
// OpenBLAS's, deterministic for a given thread count).
#pragma once

// Max pool, or average pool dividing by k*k (PyTorch's count_include_pad=True) or by the number of
// input pixels inside the window (count_include_pad=False).
typedef enum { POOL_MAX, POOL_AVG_INCLUDE_PAD, POOL_AVG_EXCLUDE_PAD } PoolMode;

// Output length of a convolution or pool along one axis (PyTorch's floor rule).
static inline int conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

#define DDM_DECLARE_CONV(REAL, S) \
    /* col scratch: N*H*W*K*K*Cin; wp scratch: Cout*K*K*Cin (the weight in (ky, kx, ci) order). */ \
    /* K odd, padding K/2. b may be NULL. */ \
    void conv2d_fwd_##S(REAL *y, REAL *col, REAL *wp, const REAL *x, const REAL *w, const REAL *b, int N, \
                        int H, int W, int Cin, int Cout, int K); \
    /* wp[Cout, (k, ci)] = w[Cout, Cin, k] for the KK kernel positions k: the weight as GEMM reads it. */ \
    void conv2d_pack_weight_##S(REAL *wp, const REAL *w, int Cout, int Cin, int KK); \
    /* Forward only, no bias: y[(n, oy, ox), 0..Cout) with row stride ldy >= Cout (a channel slice of a */ \
    /* wider tensor) from x[N, H, W, Cin] and a packed KH x KW weight; zero padding ph rows, pw columns; */ \
    /* col scratch N*Ho*Wo*KH*KW*Cin (unused, may be NULL, for a 1x1 stride-1 unpadded convolution). */ \
    void conv2d_packed_fwd_##S(REAL *y, long ldy, REAL *col, const REAL *x, const REAL *wp, int N, int H, int W, \
                               int Cin, int Cout, int KH, int KW, int stride, int ph, int pw); \
    /* dx may be NULL (first layer), db may be NULL; dwp scratch Cout*K*K*Cin. */ \
    void conv2d_bwd_##S(REAL *dx, REAL *dw, REAL *db, REAL *col, REAL *wp, REAL *dwp, const REAL *dy, \
                        const REAL *x, const REAL *w, int N, int H, int W, int Cin, int Cout, int K); \
    /* Train mode: normalises with the batch statistics over the R = N*H*W rows (biased variance), */ \
    /* saves mean and rstd = 1/sqrt(var + eps) for backward, and updates the running statistics */ \
    /* as PyTorch: run = (1 - momentum) * run + momentum * stat, running_var with the unbiased var. */ \
    void bn_fwd_train_##S(REAL *y, REAL *mean, REAL *rstd, REAL *run_mean, REAL *run_var, const REAL *x, \
                          const REAL *gamma, const REAL *beta, long R, int C, double momentum, double eps); \
    /* Eval mode: the running statistics. y may alias x. */ \
    void bn_fwd_eval_##S(REAL *y, const REAL *x, const REAL *run_mean, const REAL *run_var, \
                         const REAL *gamma, const REAL *beta, long R, int C, double eps); \
    /* Train-mode backward (through the batch statistics). dx may alias dy. */ \
    void bn_bwd_##S(REAL *dx, REAL *dgamma, REAL *dbeta, const REAL *dy, const REAL *x, const REAL *mean, \
                    const REAL *rstd, const REAL *gamma, long R, int C); \
    void relu_fwd_##S(REAL *y, const REAL *x, long n);                 /* y may alias x */ \
    void relu_bwd_##S(REAL *dx, const REAL *dy, const REAL *y, long n); /* from the output; dx may alias dy */ \
    /* 2x2, stride 2; odd rows/columns are dropped (PyTorch's floor). Out [N, H/2, W/2, C]. */ \
    void maxpool2_fwd_##S(REAL *y, const REAL *x, int N, int H, int W, int C); \
    /* The gradient goes to the first maximum in (0,0), (0,1), (1,0), (1,1) order. */ \
    void maxpool2_bwd_##S(REAL *dx, const REAL *dy, const REAL *x, const REAL *y, int N, int H, int W, int C); \
    /* Forward only: K x K window, stride, padding pad (never chosen by max); out [N, Ho, Wo, C] with */ \
    /* row stride ldy >= C. */ \
    void pool2d_fwd_##S(REAL *y, long ldy, const REAL *x, int N, int H, int W, int C, int K, int stride, int pad, \
                        PoolMode mode); \
    void gap_fwd_##S(REAL *y, const REAL *x, int N, int HW, int C);   /* y[N, C] */ \
    void gap_bwd_##S(REAL *dx, const REAL *dy, int N, int HW, int C); \
    /* y[N, O] = x[N, In] w[O, In]^T + b */ \
    void linear_fwd_##S(REAL *y, const REAL *x, const REAL *w, const REAL *b, int N, int In, int O); \
    void linear_bwd_##S(REAL *dx, REAL *dw, REAL *db, const REAL *dy, const REAL *x, const REAL *w, int N, \
                        int In, int O); \
    /* Column sums of a [R, C] matrix into out (ACCUMULATES), fixed-order blocked reduction. */ \
    void colsum_acc_##S(REAL *out, const REAL *x, long R, int C); \
    /* Layout changes: [N, C, H, W] <-> [N, H, W, C]. */ \
    void nchw_to_nhwc_##S(REAL *dst, const float *src, int N, int C, int H, int W);

DDM_DECLARE_CONV(float, f32)
DDM_DECLARE_CONV(double, f64)
