// Linear layers over the op interface, in PyTorch's layout: W [out, in], y = x W^T + b.
#pragma once
#include "ops/ops.h"

// y [N, out] = x [N, in] W^T + b (b may be NULL)
void linear_forward(const Ops *o, float *y, const float *x, const float *W, const float *b, int N, int in, int out);
// dx [N, in] = dy W (overwritten; or accumulated if dx_accumulate), skipped if dx is NULL;
// dW += dy^T x; db += column sums of dy (skipped if NULL).
void linear_backward(const Ops *o, float *dx, int dx_accumulate, float *dW, float *db, const float *dy,
                     const float *x, const float *W, int N, int in, int out);
