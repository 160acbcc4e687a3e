// The CUDA backend's kernels for every op that is not a matrix product or attention: transformer layers,
// element-wise ops, the objectives' row ops, reductions and the optimiser. Each follows the CPU kernel's
// arithmetic (src/ops/cpu/kernels.inc, cpu_ops.c): the same precision for each intermediate (double where the
// CPU sums in double), and, where the CPU accumulates a gradient in a fixed order, the same order, so that
// results agree to rounding. Every reduction has a fixed shape (no atomics), so every op is deterministic.
#include <math.h>
#include "ops/cuda/cuda_common.cuh"

#define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (long)(n); i += (long)gridDim.x * blockDim.x)
#define THREADS 256
// Launches `kernel` over n work items (grid-stride), skipping empty launches.
#define LAUNCH(kernel, n, ...)                                                      \
    do {                                                                            \
        if ((long)(n) > 0) {                                                        \
            kernel<<<cuda_blocks((size_t)(n), THREADS), THREADS>>>(__VA_ARGS__);    \
            LAUNCH_CHECK();                                                         \
        }                                                                           \
    } while (0)

__device__ __forceinline__ double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum of one value per thread of a THREADS-thread block, in a fixed tree order; every thread gets the result.
__device__ double block_sum(double v) {
    __shared__ double sh[THREADS];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();   // sh is reused by the next call
    return r;
}

static int overlaps(const void *a, size_t abytes, const void *b, size_t bbytes) {
    const char *pa = (const char *)a, *pb = (const char *)b;
    return a && b && pa < pb + bbytes && pb < pa + abytes;
}

// ---------------------------------------------------------------- bias

__global__ void k_add_bias(float *y, const float *bias, long rows, int cols) {
    GRID_STRIDE(i, rows * cols) y[i] += bias[i % cols];
}

extern "C" void cuda_add_bias(float *y, const float *bias, int rows, int cols) {
    LAUNCH(k_add_bias, (long)rows * cols, y, bias, (long)rows, cols);
}

// Column sums in two fixed passes: each (column, chunk of rows) sums its rows in order in double, then each
// column sums its chunks in order and adds the result to dbias (the CPU sums every row in order in double).
__global__ void k_bias_partial(double *part, const float *dy, int rows, int cols, int per) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
    if (c >= cols) return;
    int r1 = min(rows, (k + 1) * per);
    double s = 0;
    for (int r = k * per; r < r1; r++) s += dy[(long)r * cols + c];
    part[(long)k * cols + c] = s;
}

__global__ void k_bias_finish(float *dbias, const double *part, int chunks, int cols) {
    GRID_STRIDE(c, cols) {
        double s = 0;
        for (int k = 0; k < chunks; k++) s += part[(long)k * cols + c];
        dbias[c] += (float)s;
    }
}

extern "C" void cuda_bias_grad(float *dbias, const float *dy, int rows, int cols) {
    if (rows <= 0 || cols <= 0) return;
    int per = 64;
    while ((rows + per - 1) / per > 32768) per *= 2;   // the grid's y dimension stays within its limit
    int chunks = (rows + per - 1) / per;
    double *part = (double *)cuda_scratch(SCRATCH_REDUCE, (size_t)chunks * cols * sizeof(double));
    dim3 grid((cols + 127) / 128, chunks);
    k_bias_partial<<<grid, 128>>>(part, dy, rows, cols, per);
    LAUNCH_CHECK();
    LAUNCH(k_bias_finish, cols, dbias, part, chunks, cols);
}

__global__ void k_add_broadcast(float *x, const float *rows_add, long total, long n) {
    GRID_STRIDE(i, total) x[i] += rows_add[i % n];
}

extern "C" void cuda_add_broadcast(float *x, const float *rows_add, int B, long n) {
    LAUNCH(k_add_broadcast, (long)B * n, x, rows_add, (long)B * n, n);
}

// ---------------------------------------------------------------- LayerNorm + adaLN modulation

// One warp per row (grid-stride over rows); mean and variance in double, two passes, as the CPU.
__global__ void k_ln_mod_fwd(float *out, float *mean, float *rstd, const float *x, const float *shift,
                             const float *scale, long rows, int T, int C, int mod_stride) {
    int lane = threadIdx.x & 31;
    long warps = (long)gridDim.x * (blockDim.x / 32);
    for (long row = (blockIdx.x * (long)blockDim.x + threadIdx.x) / 32; row < rows; row += warps) {
        const float *xr = x + row * C;
        double s = 0;
        for (int c = lane; c < C; c += 32) s += xr[c];
        double mu = warp_sum(s) / C, v = 0;
        for (int c = lane; c < C; c += 32) { double d = xr[c] - mu; v += d * d; }
        double rs = 1.0 / sqrt(warp_sum(v) / C + 1e-6);
        if (lane == 0) { mean[row] = (float)mu; rstd[row] = (float)rs; }
        long b = row / T;
        const float *sh = shift + b * mod_stride, *sc = scale + b * mod_stride;
        float *o = out + row * C;
        for (int c = lane; c < C; c += 32) o[c] = (float)((xr[c] - mu) * rs) * (1 + sc[c]) + sh[c];
    }
}

extern "C" void cuda_ln_modulate_fwd(float *out, float *mean, float *rstd, const float *x, const float *shift,
                                     const float *scale, int B, int T, int C, int mod_stride) {
    long rows = (long)B * T;
    LAUNCH(k_ln_mod_fwd, rows * 32, out, mean, rstd, x, shift, scale, rows, T, C, mod_stride);
}

// dx (accumulates): one warp per row.
__global__ void k_ln_mod_bwd_dx(float *dx, const float *dout, const float *x, const float *mean, const float *rstd,
                                const float *scale, long rows, int T, int C, int mod_stride) {
    int lane = threadIdx.x & 31;
    long warps = (long)gridDim.x * (blockDim.x / 32);
    for (long row = (blockIdx.x * (long)blockDim.x + threadIdx.x) / 32; row < rows; row += warps) {
        const float *xr = x + row * C, *dy = dout + row * C, *sc = scale + (row / T) * mod_stride;
        double mu = mean[row], rs = rstd[row], sum_g = 0, sum_gx = 0;
        for (int c = lane; c < C; c += 32) {
            double xh = (xr[c] - mu) * rs, g = dy[c] * (1.0 + sc[c]);
            sum_g += g;
            sum_gx += g * xh;
        }
        sum_g = warp_sum(sum_g) / C;
        sum_gx = warp_sum(sum_gx) / C;
        float *d = dx + row * C;
        for (int c = lane; c < C; c += 32) {
            double xh = (xr[c] - mu) * rs, g = dy[c] * (1.0 + sc[c]);
            d[c] += (float)(rs * (g - sum_g - xh * sum_gx));
        }
    }
}

// dshift, dscale (accumulate): one thread per (b, c), tokens in order, in float as the CPU accumulates them.
__global__ void k_ln_mod_bwd_params(float *dshift, float *dscale, const float *dout, const float *x, const float *mean,
                                    const float *rstd, int B, int T, int C, int mod_stride) {
    GRID_STRIDE(i, (long)B * C) {
        long b = i / C;
        int c = (int)(i - b * C);
        float ash = dshift[b * mod_stride + c], asc = dscale[b * mod_stride + c];
        for (int t = 0; t < T; t++) {
            long bt = b * T + t;
            float dy = dout[bt * C + c];
            double xh = (x[bt * C + c] - (double)mean[bt]) * (double)rstd[bt];
            ash += dy;
            asc += (float)(dy * xh);
        }
        dshift[b * mod_stride + c] = ash;
        dscale[b * mod_stride + c] = asc;
    }
}

extern "C" void cuda_ln_modulate_bwd(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                     const float *mean, const float *rstd, const float *scale, int B, int T, int C,
                                     int mod_stride) {
    long rows = (long)B * T;
    LAUNCH(k_ln_mod_bwd_dx, rows * 32, dx, dout, x, mean, rstd, scale, rows, T, C, mod_stride);
    LAUNCH(k_ln_mod_bwd_params, (long)B * C, dshift, dscale, dout, x, mean, rstd, B, T, C, mod_stride);
}

// ---------------------------------------------------------------- activations

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

__global__ void k_gelu_fwd(float *y, const float *x, long n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        y[i] = 0.5f * v * (1 + tanhf(GELU_K * (v + 0.044715f * v * v * v)));
    }
}

__global__ void k_gelu_bwd(float *dx, const float *dy, const float *x, long n) {
    GRID_STRIDE(i, n) {
        float v = x[i], u = GELU_K * (v + 0.044715f * v * v * v), th = tanhf(u);
        float du = GELU_K * (1 + (float)(3 * 0.044715) * v * v);
        dx[i] = dy[i] * (0.5f * (1 + th) + 0.5f * v * (1 - th * th) * du);
    }
}

__global__ void k_silu_fwd(float *y, const float *x, long n) {
    GRID_STRIDE(i, n) y[i] = x[i] / (1 + expf(-x[i]));
}

__global__ void k_silu_bwd(float *dx, const float *dy, const float *x, long n) {
    GRID_STRIDE(i, n) {
        float s = 1 / (1 + expf(-x[i]));
        dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
    }
}

extern "C" void cuda_gelu_fwd(float *y, const float *x, long n) { LAUNCH(k_gelu_fwd, n, y, x, n); }
extern "C" void cuda_gelu_bwd(float *dx, const float *dy, const float *x, long n) { LAUNCH(k_gelu_bwd, n, dx, dy, x, n); }
extern "C" void cuda_silu_fwd(float *y, const float *x, long n) { LAUNCH(k_silu_fwd, n, y, x, n); }
extern "C" void cuda_silu_bwd(float *dx, const float *dy, const float *x, long n) { LAUNCH(k_silu_bwd, n, dx, dy, x, n); }

// ---------------------------------------------------------------- gated residual

__global__ void k_gated_fwd(float *x, const float *gate, const float *branch, long total, long TC, int C,
                            int gate_stride) {
    GRID_STRIDE(i, total) x[i] += gate[(i / TC) * gate_stride + i % C] * branch[i];
}

extern "C" void cuda_gated_residual_fwd(float *x, const float *gate, const float *branch, int B, int T, int C,
                                        int gate_stride) {
    long total = (long)B * T * C;
    LAUNCH(k_gated_fwd, total, x, gate, branch, total, (long)T * C, C, gate_stride);
}

__global__ void k_gated_bwd_branch(float *dbranch, const float *dx, const float *gate, long total, long TC, int C,
                                   int gate_stride) {
    GRID_STRIDE(i, total) dbranch[i] = gate[(i / TC) * gate_stride + i % C] * dx[i];
}

// dgate (accumulates): one thread per (b, c), tokens in order in float, as the CPU.
__global__ void k_gated_bwd_gate(float *dgate, const float *dx, const float *branch, int B, int T, int C,
                                 int gate_stride) {
    GRID_STRIDE(i, (long)B * C) {
        long b = i / C;
        int c = (int)(i - b * C);
        float acc = dgate[b * gate_stride + c];
        for (int t = 0; t < T; t++) {
            long o = (b * T + t) * C + c;
            acc += dx[o] * branch[o];
        }
        dgate[b * gate_stride + c] = acc;
    }
}

extern "C" void cuda_gated_residual_bwd(float *dbranch, float *dgate, const float *dx, const float *gate,
                                        const float *branch, int B, int T, int C, int gate_stride) {
    long total = (long)B * T * C;
    // dgate first: it reads branch and dx, and the contract does not forbid dbranch aliasing dx
    LAUNCH(k_gated_bwd_gate, (long)B * C, dgate, dx, branch, B, T, C, gate_stride);
    LAUNCH(k_gated_bwd_branch, total, dbranch, dx, gate, total, (long)T * C, C, gate_stride);
}

// ---------------------------------------------------------------- patches

// Token element i of [B, gh*gw, D] and its pixel index in [B, C, H, W]. chw_order: token channel (c*p + ki)*p + kj
// (patchify, the conv weight's order); else (ki*p + kj)*C + c (DiT's unpatchify).
__device__ __forceinline__ long patch_pixel(long i, int C, int H, int W, int p, int chw_order) {
    int gw = W / p, D = C * p * p;
    long tok = i / D;
    int d = (int)(i - tok * D);
    long gg = (long)(H / p) * gw, b = tok / gg;
    int t = (int)(tok - b * gg), th = t / gw, tw = t - th * gw, c, ki, kj;
    if (chw_order) { c = d / (p * p); ki = (d / p) % p; kj = d % p; }
    else { ki = d / (p * C); kj = (d / C) % p; c = d % C; }
    return ((b * C + c) * H + th * p + ki) * (long)W + tw * p + kj;
}

__global__ void k_patch_gather(float *tokens, const float *img, long n, int C, int H, int W, int p, int chw) {
    GRID_STRIDE(i, n) tokens[i] = img[patch_pixel(i, C, H, W, p, chw)];
}

__global__ void k_patch_scatter(float *img, const float *tokens, long n, int C, int H, int W, int p, int chw) {
    GRID_STRIDE(i, n) img[patch_pixel(i, C, H, W, p, chw)] = tokens[i];
}

extern "C" void cuda_patchify(float *tokens, const float *img, int B, int C, int H, int W, int p) {
    long n = (long)B * C * H * W;   // tokens hold every pixel once (H, W divisible by p)
    LAUNCH(k_patch_gather, n, tokens, img, n, C, H, W, p, 1);
}
extern "C" void cuda_patchify_bwd(float *dimg, const float *dtokens, int B, int C, int H, int W, int p) {
    long n = (long)B * C * H * W;
    LAUNCH(k_patch_scatter, n, dimg, dtokens, n, C, H, W, p, 1);
}
extern "C" void cuda_unpatchify(float *img, const float *tokens, int B, int C, int H, int W, int p) {
    long n = (long)B * C * H * W;
    LAUNCH(k_patch_scatter, n, img, tokens, n, C, H, W, p, 0);
}
extern "C" void cuda_unpatchify_bwd(float *dtokens, const float *dimg, int B, int C, int H, int W, int p) {
    long n = (long)B * C * H * W;
    LAUNCH(k_patch_gather, n, dtokens, dimg, n, C, H, W, p, 0);
}

// ---------------------------------------------------------------- embeddings

// As the CPU (cpu_timestep_embed): frequencies and t*freq rounded to float (as DiT computes in float32), cos, sin
// and exp in double. neg_log_period is computed on the host, as the CPU does.
__global__ void k_timestep(float *out, const float *t, int B, float neg_log_period) {
    GRID_STRIDE(i, (long)B * 128) {
        int b = (int)(i / 128), k = (int)(i % 128);
        float freq = (float)exp((double)(neg_log_period * (float)k / 128.0f));
        float arg = t[b] * freq;
        out[b * 256 + k] = (float)cos((double)arg);
        out[b * 256 + 128 + k] = (float)sin((double)arg);
    }
}

extern "C" void cuda_timestep_embed(float *out, const float *t, int B) {
    LAUNCH(k_timestep, (long)B * 128, out, t, B, (float)-log(10000.0));
}

__global__ void k_embed_fwd(float *out, const float *table, const int *idx, int B, int C) {
    GRID_STRIDE(i, (long)B * C) {
        long b = i / C;
        out[i] = table[(long)idx[b] * C + (i - b * C)];
    }
}

// One thread per column, samples in order: rows shared by several samples accumulate without atomics, in the
// CPU's order (deterministic, and bit-identical to the CPU).
__global__ void k_embed_bwd(float *dtable, const float *dout, const int *idx, int B, int C) {
    GRID_STRIDE(c, C) {
        for (int b = 0; b < B; b++) dtable[(long)idx[b] * C + c] += dout[(long)b * C + c];
    }
}

extern "C" void cuda_embed_fwd(float *out, const float *table, const int *idx, int B, int C) {
    LAUNCH(k_embed_fwd, (long)B * C, out, table, idx, B, C);
}
extern "C" void cuda_embed_bwd(float *dtable, const float *dout, const int *idx, int B, int C) {
    LAUNCH(k_embed_bwd, C, dtable, dout, idx, B, C);
}

// ---------------------------------------------------------------- element-wise

__global__ void k_axpy(float *y, float a, const float *x, long n) { GRID_STRIDE(i, n) y[i] += a * x[i]; }
__global__ void k_scale(float *x, float s, long n) { GRID_STRIDE(i, n) x[i] *= s; }
__global__ void k_scale_cols(float *x, const float *s, long n, int cols) { GRID_STRIDE(i, n) x[i] *= s[i % cols]; }

extern "C" void cuda_axpy(float *y, float a, const float *x, size_t n) { LAUNCH(k_axpy, (long)n, y, a, x, (long)n); }
extern "C" void cuda_scale(float *x, float s, size_t n) { LAUNCH(k_scale, (long)n, x, s, (long)n); }
extern "C" void cuda_scale_cols(float *x, const float *s, long rows, int cols) {
    LAUNCH(k_scale_cols, rows * cols, x, s, rows * cols, cols);
}

// A source that overlaps the destination differently than element for element is read from a staged copy,
// so that a parallel kernel gives what the CPU's sequential loop gives.
static const float *staged(const float *src, size_t floats, int slot) {
    float *tmp = (float *)cuda_scratch(slot, floats * sizeof(float));
    CUDA_CHECK(cudaMemcpyAsync(tmp, src, floats * sizeof(float), cudaMemcpyDeviceToDevice, 0));
    return tmp;
}

__global__ void k_copy_rows(float *y, long ys, const float *x, long xs, int B, long n, long w) {
    GRID_STRIDE(i, (long)B * w) {
        long b = i / w, k = i - b * w;
        y[b * ys + k] = k < n ? x[b * xs + k] : 0.0f;
    }
}

extern "C" void cuda_copy_rows(float *y, long y_stride, const float *x, long x_stride, int B, long n, int zero_tail) {
    if (B <= 0) return;
    long w = zero_tail ? y_stride : n;
    size_t ybytes = ((size_t)(B - 1) * y_stride + w) * sizeof(float), xfl = (size_t)(B - 1) * x_stride + n;
    if (!(x == y && x_stride == y_stride) && overlaps(y, ybytes, x, xfl * sizeof(float)))
        x = staged(x, xfl, SCRATCH_COPY);
    LAUNCH(k_copy_rows, (long)B * w, y, y_stride, x, x_stride, B, n, w);
}

__global__ void k_affine_rows(float *y1, float *y2, const float *x, const float *e, const double *coef, int B, long n,
                              long xs, long es) {
    GRID_STRIDE(i, (long)B * n) {
        long b = i / n, k = i - b * n;
        const double *c = coef + 4 * b;
        float xi = x[b * xs + k], ei = e[b * es + k];   // both read before y1 (which may alias x) is written
        y1[i] = (float)(c[0] * xi + c[1] * ei);
        if (y2) y2[i] = (float)(c[2] * xi + c[3] * ei);
    }
}

extern "C" void cuda_affine_rows(float *y1, float *y2, const float *x, const float *e, const double *coef, int B,
                                 long n, long x_stride, long e_stride) {
    if (B <= 0 || n <= 0) return;
    size_t yb = (size_t)B * n * sizeof(float), xf = (size_t)(B - 1) * x_stride + n, ef = (size_t)(B - 1) * e_stride + n;
    // element-for-element aliasing (y1 == x, same stride) is safe; anything else is staged
    int x_same = (const float *)y1 == x && x_stride == n, e_same = (const float *)y1 == e && e_stride == n;
    if ((!x_same && overlaps(y1, yb, x, xf * 4)) || overlaps(y2, yb, x, xf * 4)) x = staged(x, xf, SCRATCH_COPY);
    if ((!e_same && overlaps(y1, yb, e, ef * 4)) || overlaps(y2, yb, e, ef * 4)) e = staged(e, ef, SCRATCH_GEMM_B);
    LAUNCH(k_affine_rows, (long)B * n, y1, y2, x, e, coef, B, n, x_stride, e_stride);
}

__global__ void k_sub_rows(float *y, const float *a, const float *c, int B, long n, long as, long cs) {
    GRID_STRIDE(i, (long)B * n) {
        long b = i / n, k = i - b * n;
        y[i] = a[b * as + k] - c[b * cs + k];
    }
}

extern "C" void cuda_sub_rows(float *y, const float *a, const float *c, int B, long n, long a_stride, long c_stride) {
    if (B <= 0 || n <= 0) return;
    size_t yb = (size_t)B * n * sizeof(float), af = (size_t)(B - 1) * a_stride + n, cf = (size_t)(B - 1) * c_stride + n;
    if (!((const float *)y == a && a_stride == n) && overlaps(y, yb, a, af * 4)) a = staged(a, af, SCRATCH_COPY);
    if (!((const float *)y == c && c_stride == n) && overlaps(y, yb, c, cf * 4)) c = staged(c, cf, SCRATCH_GEMM_B);
    LAUNCH(k_sub_rows, (long)B * n, y, a, c, B, n, a_stride, c_stride);
}

// ---------------------------------------------------------------- objectives: per-row sums in double

// One block per row; each thread sums its strided share in double, then a fixed tree (block_sum): deterministic,
// and in double, though not in the CPU's sequential i order (the results differ only far below float precision).
__global__ void k_sq_err_rows(double *loss, float *grad, const float *out, const float *target, double g, long n,
                              long out_stride) {
    long b = blockIdx.x;
    const float *o = out + b * out_stride, *tg = target + b * n;
    float *d = grad ? grad + b * out_stride : NULL;
    double s = 0;
    for (long i = threadIdx.x; i < n; i += blockDim.x) {
        double e = (double)o[i] - tg[i];
        s += e * e;
        if (d) d[i] = (float)(g * e);
    }
    if (d)
        for (long i = n + threadIdx.x; i < out_stride; i += blockDim.x) d[i] = 0.0f;
    s = block_sum(s);
    if (threadIdx.x == 0) loss[b] = s;
}

extern "C" void cuda_sq_err_rows(double *loss, float *grad, const float *out, const float *target, double g, int B,
                                 long n, long out_stride) {
    if (B <= 0) return;
    k_sq_err_rows<<<B, THREADS>>>(loss, grad, out, target, g, n, out_stride);
    LAUNCH_CHECK();
}

__global__ void k_weighted_sq_rows(double *loss, float *r, const double *w, const double *g, long rows, int dim) {
    long b = blockIdx.x, n = rows * dim;
    float *rb = r + b * n;
    double s = 0;
    for (long j = threadIdx.x; j < n; j += blockDim.x) {
        int i = (int)(j % dim);
        double v = rb[j];
        s += w[i] * v * v;
        if (g) rb[j] = (float)(g[b] * w[i] * v);
    }
    s = block_sum(s);
    if (threadIdx.x == 0) loss[b] = s;
}

extern "C" void cuda_weighted_sq_rows(double *loss, float *r, const double *w, const double *g, int B, long rows,
                                      int dim) {
    if (B <= 0) return;
    k_weighted_sq_rows<<<B, THREADS>>>(loss, r, w, g, rows, dim);
    LAUNCH_CHECK();
}

// ---------------------------------------------------------------- sum of squares (gradient norm)

#define SUMSQ_CHUNK 65536
// Chunks of SUMSQ_CHUNK, each one block's fixed tree, then the chunks' sums by one block: the same result for
// the same n on any GPU run (the grouping differs from the CPU's, so the two agree to rounding).
__global__ void k_sumsq_chunks(double *part, const float *x, size_t n, size_t chunks) {
    for (size_t c = blockIdx.x; c < chunks; c += gridDim.x) {
        size_t end = (c + 1) * SUMSQ_CHUNK < n ? (c + 1) * SUMSQ_CHUNK : n;
        double s = 0;
        for (size_t i = c * SUMSQ_CHUNK + threadIdx.x; i < end; i += blockDim.x) s += (double)x[i] * x[i];
        s = block_sum(s);
        if (threadIdx.x == 0) part[c] = s;
    }
}

__global__ void k_sum_parts(double *out, const double *part, size_t chunks) {
    double s = 0;
    for (size_t c = threadIdx.x; c < chunks; c += blockDim.x) s += part[c];
    s = block_sum(s);
    if (threadIdx.x == 0) out[0] = s;
}

extern "C" double cuda_sumsq(const float *x, size_t n) {
    if (!n) return 0;
    size_t chunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *part = (double *)cuda_scratch(SCRATCH_REDUCE, (chunks + 1) * sizeof(double)), r = 0;
    k_sumsq_chunks<<<chunks < 65536 ? (unsigned)chunks : 65536u, THREADS>>>(part, x, n, chunks);
    LAUNCH_CHECK();
    k_sum_parts<<<1, THREADS>>>(part + chunks, part, chunks);
    LAUNCH_CHECK();
    CUDA_CHECK(cudaMemcpy(&r, part + chunks, sizeof(double), cudaMemcpyDeviceToHost));
    return r;
}

// ---------------------------------------------------------------- optimiser

__global__ void k_adamw(float *p, const float *g, float *m, float *v, long n, float lr, float beta1, float beta2,
                        float eps, float wd, float bc1, float bc2) {
    GRID_STRIDE(i, n) {
        float gi = g[i], mi = beta1 * m[i] + (1 - beta1) * gi, vi = beta2 * v[i] + (1 - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2, pi = p[i];
        pi -= lr * wd * pi;   // decoupled decay first, as torch.optim.AdamW
        p[i] = pi - lr * mhat / (sqrtf(vhat) + eps);
    }
}

extern "C" void cuda_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                           float eps, float wd, float bc1, float bc2) {
    LAUNCH(k_adamw, (long)n, p, g, m, v, (long)n, lr, beta1, beta2, eps, wd, bc1, bc2);
}

__global__ void k_ema(float *e, const float *p, long n, float decay) {
    GRID_STRIDE(i, n) e[i] = decay * e[i] + (1 - decay) * p[i];
}

extern "C" void cuda_ema(float *ema, const float *p, size_t n, float decay) {
    LAUNCH(k_ema, (long)n, ema, p, (long)n, decay);
}
