#include "nn/layers.h"

void linear_forward(const Ops *o, float *y, const float *x, const float *W, const float *b, int N, int in, int out) {
    o->gemm(0, 1, N, out, in, 1.0f, x, in, W, in, 0.0f, y, out);
    if (b) o->add_bias(y, b, N, out);
}

void linear_backward(const Ops *o, float *dx, int dx_accumulate, float *dW, float *db, const float *dy,
                     const float *x, const float *W, int N, int in, int out) {
    if (dx) o->gemm(0, 0, N, in, out, 1.0f, dy, out, W, in, dx_accumulate ? 1.0f : 0.0f, dx, in);
    o->gemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in);
    if (db) o->bias_grad(db, dy, N, out);
}
