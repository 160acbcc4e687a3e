// The classifier's CNN layers (src/nn/conv.c) and network (src/eval/classifier.c): float64
// central finite-difference gradient checks of every layer and of the whole network, conv2d against
// a direct convolution (also the forward-only general convolution and pools of Inception-v3), batchnorm's running statistics and eval mode, save/load, and a small
// network overfitting one batch.
#include <omp.h>
#include <string.h>
#include <unistd.h>
#include "data/dataset.h"
#include "eval/classifier.h"
#include "eval/cnn_kernels.h"
#include "rng.h"
#include "test.h"

static Rng g_rng;
static void randn(double *x, long n, double s) { for (long i = 0; i < n; i++) x[i] = s * rng_normal(&g_rng); }
static double dot(const double *a, const double *b, long n) { double s = 0; for (long i = 0; i < n; i++) s += a[i] * b[i]; return s; }

// |num - g| <= 1e-8 + 1e-6 |num| everywhere.
static int fd_check_h(LossFn loss, void *ctx, double *x, const double *g, long n, const char *what, double h) {
    return fd_check_tol(loss, ctx, x, g, n, what, h, 1e-8, 1e-6);
}
static int fd_check(LossFn loss, void *ctx, double *x, const double *g, long n, const char *what) {
    return fd_check_h(loss, ctx, x, g, n, what, 1e-6);
}

// ---------------------------------------------------------------- conv2d
typedef struct { int N, H, W, Ci, Co, K; double *x, *w, *b, *R, *y, *col, *wp; } Conv;
static double conv_loss(void *p) {
    Conv *c = p;
    conv2d_fwd_f64(c->y, c->col, c->wp, c->x, c->w, c->b, c->N, c->H, c->W, c->Ci, c->Co, c->K);
    return dot(c->y, c->R, (long)c->N * c->H * c->W * c->Co);
}
static void test_conv(int K) {
    Conv c = {.N = 2, .H = 5, .W = 4, .Ci = 3, .Co = 4, .K = K};
    long nx = (long)c.N * c.H * c.W * c.Ci, ny = (long)c.N * c.H * c.W * c.Co, nw = (long)c.Co * c.Ci * K * K;
    c.x = malloc(nx * 8); c.w = malloc(nw * 8); c.b = malloc(c.Co * 8); c.R = malloc(ny * 8); c.y = malloc(ny * 8);
    c.col = malloc((long)c.N * c.H * c.W * K * K * c.Ci * 8); c.wp = malloc(nw * 8);
    randn(c.x, nx, 1); randn(c.w, nw, 1); randn(c.b, c.Co, 1); randn(c.R, ny, 1);
    // forward against the direct definition (cross-correlation, zero 'same' padding)
    conv_loss(&c);
    double worst = 0;
    int pad = K / 2;
    for (int n = 0; n < c.N; n++) for (int y = 0; y < c.H; y++) for (int x = 0; x < c.W; x++)
        for (int o = 0; o < c.Co; o++) {
            double s = c.b[o];
            for (int ci = 0; ci < c.Ci; ci++) for (int ky = 0; ky < K; ky++) for (int kx = 0; kx < K; kx++) {
                int iy = y + ky - pad, ix = x + kx - pad;
                if (iy < 0 || iy >= c.H || ix < 0 || ix >= c.W) continue;
                s += c.w[((o * c.Ci + ci) * K + ky) * K + kx] * c.x[((n * c.H + iy) * c.W + ix) * c.Ci + ci];
            }
            double d = fabs(s - c.y[((n * c.H + y) * c.W + x) * c.Co + o]);
            if (d > worst) worst = d;
        }
    CHECK(worst < 1e-12, "conv2d K=%d forward vs direct convolution: max diff %.3g", K, worst);
    double *dx = malloc(nx * 8), *dw = calloc(nw, 8), *db = calloc(c.Co, 8), *dwp = malloc(nw * 8);
    conv2d_bwd_f64(dx, dw, db, c.col, c.wp, dwp, c.R, c.x, c.w, c.N, c.H, c.W, c.Ci, c.Co, K);
    CHECK(fd_check(conv_loss, &c, c.x, dx, nx, "conv dx"), "conv2d K=%d dx", K);
    CHECK(fd_check(conv_loss, &c, c.w, dw, nw, "conv dw"), "conv2d K=%d dw", K);
    CHECK(fd_check(conv_loss, &c, c.b, db, c.Co, "conv db"), "conv2d K=%d db", K);
    // parameter gradients accumulate
    double *dw2 = malloc(nw * 8);
    memcpy(dw2, dw, nw * 8);
    conv2d_bwd_f64(NULL, dw2, NULL, c.col, c.wp, dwp, c.R, c.x, c.w, c.N, c.H, c.W, c.Ci, c.Co, K);
    int acc = 1;
    for (long i = 0; i < nw; i++) acc &= fabs(dw2[i] - 2 * dw[i]) <= 1e-12 * (1 + fabs(dw[i]));
    CHECK(acc, "conv2d dw accumulates");
    // float32 agrees with float64
    float *xf = malloc(nx * 4), *wf = malloc(nw * 4), *bf = malloc(c.Co * 4), *yf = malloc(ny * 4);
    float *colf = malloc((long)c.N * c.H * c.W * K * K * c.Ci * 4), *wpf = malloc(nw * 4), *ref = malloc(ny * 4);
    for (long i = 0; i < nx; i++) xf[i] = (float)c.x[i];
    for (long i = 0; i < nw; i++) wf[i] = (float)c.w[i];
    for (int i = 0; i < c.Co; i++) bf[i] = (float)c.b[i];
    conv2d_fwd_f32(yf, colf, wpf, xf, wf, bf, c.N, c.H, c.W, c.Ci, c.Co, K);
    for (long i = 0; i < ny; i++) ref[i] = (float)c.y[i];
    CHECK(close_enough(yf, ref, ny, 1e-5, 1e-5, "conv f32"), "conv2d float32 vs float64");
    free(xf); free(wf); free(bf); free(yf); free(colf); free(wpf); free(ref);
    free(c.x); free(c.w); free(c.b); free(c.R); free(c.y); free(c.col); free(c.wp);
    free(dx); free(dw); free(db); free(dwp); free(dw2);
}

// ---------------------------------------------------------------- forward-only layers (Inception-v3)
// conv2d_packed_fwd with a rectangular kernel, stride and padding, into a channel slice of a wider
// output, against the direct definition; the columns outside the slice are left alone.
static void test_conv_general(int KH, int KW, int stride, int ph, int pw) {
    int N = 2, H = 7, W = 6, Ci = 3, Co = 4, off = 2, ld = 9;
    int Ho = conv_out_size(H, KH, stride, ph), Wo = conv_out_size(W, KW, stride, pw);
    long nx = (long)N * H * W * Ci, nw = (long)Co * Ci * KH * KW, P = (long)N * Ho * Wo;
    double *x = malloc(nx * 8), *w = malloc(nw * 8), *wp = malloc(nw * 8), *y = malloc(P * ld * 8);
    double *col = malloc(P * KH * KW * Ci * 8);
    randn(x, nx, 1); randn(w, nw, 1);
    for (long i = 0; i < P * ld; i++) y[i] = 7;
    conv2d_pack_weight_f64(wp, w, Co, Ci, KH * KW);
    conv2d_packed_fwd_f64(y + off, ld, col, x, wp, N, H, W, Ci, Co, KH, KW, stride, ph, pw);
    double worst = 0;
    int untouched = 1;
    for (int n = 0; n < N; n++) for (int oy = 0; oy < Ho; oy++) for (int ox = 0; ox < Wo; ox++) {
        const double *row = y + (((long)n * Ho + oy) * Wo + ox) * ld;
        for (int o = 0; o < Co; o++) {
            double s = 0;
            for (int ci = 0; ci < Ci; ci++) for (int ky = 0; ky < KH; ky++) for (int kx = 0; kx < KW; kx++) {
                int iy = oy * stride + ky - ph, ix = ox * stride + kx - pw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += w[((o * Ci + ci) * KH + ky) * KW + kx] * x[((n * H + iy) * W + ix) * Ci + ci];
            }
            worst = fmax(worst, fabs(s - row[off + o]));
        }
        for (int c = 0; c < ld; c++) if (c < off || c >= off + Co) untouched &= row[c] == 7;
    }
    CHECK(worst < 1e-12, "conv %dx%d stride %d pad %d,%d vs direct: max diff %.3g", KH, KW, stride, ph, pw, worst);
    CHECK(untouched, "conv %dx%d stride %d writes only its channel slice", KH, KW, stride);
    free(x); free(w); free(wp); free(y); free(col);
}

// pool2d_fwd (3x3 windows as Inception's: stride 1 pad 1, stride 2 pad 0) against the definitions.
static void test_pool_general(void) {
    int N = 2, H = 7, W = 6, C = 3, ld = 5;
    long nx = (long)N * H * W * C;
    double *x = malloc(nx * 8), *y = malloc((long)N * H * W * ld * 8);
    randn(x, nx, 1);
    const char *names[3] = {"max", "avg (count_include_pad)", "avg (exclude pad)"};
    for (int stride = 1; stride <= 2; stride++)
        for (int mode = 0; mode < 3; mode++) {
            int pad = 2 - stride, Ho = conv_out_size(H, 3, stride, pad), Wo = conv_out_size(W, 3, stride, pad);
            pool2d_fwd_f64(y, ld, x, N, H, W, C, 3, stride, pad, (PoolMode)mode);
            double worst = 0;
            for (int n = 0; n < N; n++) for (int oy = 0; oy < Ho; oy++) for (int ox = 0; ox < Wo; ox++)
                for (int c = 0; c < C; c++) {
                    double mx = -INFINITY, sum = 0;
                    int cnt = 0;
                    for (int ky = 0; ky < 3; ky++) for (int kx = 0; kx < 3; kx++) {
                        int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        double v = x[((n * H + iy) * W + ix) * C + c];
                        mx = fmax(mx, v); sum += v; cnt++;
                    }
                    double want = mode == POOL_MAX ? mx : sum / (mode == POOL_AVG_INCLUDE_PAD ? 9 : cnt);
                    worst = fmax(worst, fabs(want - y[(((long)n * Ho + oy) * Wo + ox) * ld + c]));
                }
            CHECK(worst < 1e-14, "3x3 %s pool, stride %d: max diff %.3g", names[mode], stride, worst);
        }
    free(x); free(y);
}

// ---------------------------------------------------------------- batchnorm
typedef struct { long R; int C; double *x, *g, *b, *Rm, *y, *mean, *rstd; } Bn;
static double bn_loss(void *p) {
    Bn *c = p;
    bn_fwd_train_f64(c->y, c->mean, c->rstd, NULL, NULL, c->x, c->g, c->b, c->R, c->C, 0.1, 1e-5);
    return dot(c->y, c->Rm, c->R * c->C);
}
static void test_bn(void) {
    enum { R = 600, C = 3 };   // more rows than one reduction block (512)
    static double x[R * C], Rm[R * C], y[R * C], dx[R * C];
    double g[C], b[C], mean[C], rstd[C], dg[C] = {0}, db[C] = {0};
    Bn c = {R, C, x, g, b, Rm, y, mean, rstd};
    randn(x, R * C, 2); randn(g, C, 1); randn(b, C, 1); randn(Rm, R * C, 1);
    for (long i = 0; i < R * C; i++) x[i] += 1.5 + (i % C);
    bn_loss(&c);
    bn_bwd_f64(dx, dg, db, Rm, x, mean, rstd, g, R, C);
    // a larger step: the loss sums 1800 terms, so its rounding noise / h would dominate at 1e-6
    CHECK(fd_check_h(bn_loss, &c, x, dx, 60, "bn dx (first rows)", 1e-4), "batchnorm dx");
    CHECK(fd_check_h(bn_loss, &c, x + (R - 20) * C, dx + (R - 20) * C, 60, "bn dx (last rows)", 1e-4),
          "batchnorm dx (last rows)");
    CHECK(fd_check(bn_loss, &c, g, dg, C, "bn dgamma"), "batchnorm dgamma");
    CHECK(fd_check(bn_loss, &c, b, db, C, "bn dbeta"), "batchnorm dbeta");
    bn_loss(&c);   // y at the unperturbed x
    // normalised output: per channel mean beta, variance gamma^2 * var / (var + eps)
    int okm = 1;
    for (int ch = 0; ch < C; ch++) {
        double s = 0;
        for (long r = 0; r < R; r++) s += y[r * C + ch];
        okm &= fabs(s / R - b[ch]) < 1e-10;
    }
    CHECK(okm, "batchnorm output mean = beta");
    // running statistics: momentum 0.1 toward the batch mean and the unbiased variance
    double rm[C] = {0.5, -1, 2}, rv[C] = {1, 2, 3};
    bn_fwd_train_f64(y, mean, rstd, rm, rv, x, g, b, R, C, 0.1, 1e-5);
    int okr = 1;
    for (int ch = 0; ch < C; ch++) {
        double s = 0, ss = 0;
        for (long r = 0; r < R; r++) s += x[r * C + ch];
        double mu = s / R;
        for (long r = 0; r < R; r++) ss += (x[r * C + ch] - mu) * (x[r * C + ch] - mu);
        double wm = 0.9 * (double[]){0.5, -1, 2}[ch] + 0.1 * mu, wv = 0.9 * (double[]){1, 2, 3}[ch] + 0.1 * ss / (R - 1);
        okr &= fabs(rm[ch] - wm) < 1e-12 && fabs(rv[ch] - wv) < 1e-12;
    }
    CHECK(okr, "batchnorm running mean/var (momentum 0.1, unbiased variance)");
    // eval mode normalises with the running statistics, not the batch's
    bn_fwd_eval_f64(y, x, rm, rv, g, b, R, C, 1e-5);
    int oke = 1;
    for (long r = 0; r < R; r++)
        for (int ch = 0; ch < C; ch++)
            oke &= fabs(y[r * C + ch] - ((x[r * C + ch] - rm[ch]) / sqrt(rv[ch] + 1e-5) * g[ch] + b[ch])) < 1e-12;
    CHECK(oke, "batchnorm eval mode uses the running statistics");
}

// ---------------------------------------------------------------- relu, pools, linear
typedef struct { int kind, N, H, W, C; double *x, *y, *R; } Simple;
static double simple_loss(void *p) {
    Simple *c = p;
    long ny;
    if (c->kind == 0) { relu_fwd_f64(c->y, c->x, (long)c->N * c->H * c->W * c->C); ny = (long)c->N * c->H * c->W * c->C; }
    else if (c->kind == 1) { maxpool2_fwd_f64(c->y, c->x, c->N, c->H, c->W, c->C); ny = (long)c->N * (c->H / 2) * (c->W / 2) * c->C; }
    else { gap_fwd_f64(c->y, c->x, c->N, c->H * c->W, c->C); ny = (long)c->N * c->C; }
    return dot(c->y, c->R, ny);
}
static void test_simple(void) {
    enum { N = 2, H = 5, W = 4, C = 3, NX = N * H * W * C };
    double x[NX], y[NX], R[NX], dx[NX];
    const char *names[3] = {"relu", "maxpool 2x2 (odd height)", "global average pool"};
    for (int kind = 0; kind < 3; kind++) {
        Simple c = {kind, N, H, W, C, x, y, R};
        randn(x, NX, 1); randn(R, NX, 1);
        for (int i = 0; i < NX; i++) if (fabs(x[i]) < 0.05) x[i] += 0.1;  // away from ReLU's kink
        simple_loss(&c);
        if (kind == 0) relu_bwd_f64(dx, R, y, NX);
        else if (kind == 1) maxpool2_bwd_f64(dx, R, x, y, N, H, W, C);
        else gap_bwd_f64(dx, R, N, H * W, C);
        CHECK(fd_check(simple_loss, &c, x, dx, NX, names[kind]), "%s dx", names[kind]);
    }
    // ties in max-pool: the gradient goes to exactly one input (the first)
    double tx[16] = {0}, ty[4], tdy[4] = {1, 1, 1, 1}, tdx[16];
    maxpool2_fwd_f64(ty, tx, 1, 4, 4, 1);
    maxpool2_bwd_f64(tdx, tdy, tx, ty, 1, 4, 4, 1);
    CHECK(tdx[0] == 1 && tdx[1] == 0 && tdx[4] == 0 && tdx[5] == 0 && dot(tdx, tdx, 16) == 4, "max-pool ties");
}

typedef struct { int N, I, O; double *x, *w, *b, *R, *y; } Lin;
static double lin_loss(void *p) {
    Lin *c = p;
    linear_fwd_f64(c->y, c->x, c->w, c->b, c->N, c->I, c->O);
    return dot(c->y, c->R, (long)c->N * c->O);
}
static void test_linear(void) {
    double x[15], w[12], b[4], R[20], y[20], dx[15], dw[12] = {0}, db[4] = {0};
    Lin c = {5, 3, 4, x, w, b, R, y};
    randn(x, 15, 1); randn(w, 12, 1); randn(b, 4, 1); randn(R, 20, 1);
    linear_bwd_f64(dx, dw, db, R, x, w, 5, 3, 4);
    CHECK(fd_check(lin_loss, &c, x, dx, 15, "linear dx"), "linear dx");
    CHECK(fd_check(lin_loss, &c, w, dw, 12, "linear dw"), "linear dw");
    CHECK(fd_check(lin_loss, &c, b, db, 4, "linear db"), "linear db");
}

// ---------------------------------------------------------------- the whole network
typedef struct { Classifier *c; double *p, *s; float *x; int *y; int n; } NetCtx;
static double net_loss(void *p) {
    NetCtx *k = p;
    return classifier_loss_grad_f64(k->c, k->p, k->s, k->x, k->y, k->n, NULL);
}
static void test_network_grad(void) {
    Classifier *c = classifier_create_arch("3,M,4,5", 2, 7, 6, 3, 1);   // odd size: the pool drops a row
    enum { n = 5 };
    float x[n * 2 * 7 * 6];
    for (int i = 0; i < n * 84; i++) x[i] = rng_normal(&g_rng);
    int y[n] = {0, 2, 1, 2, 0};
    double *p = malloc(c->n_params * 8), *g = malloc(c->n_params * 8), *s = calloc(c->n_stats, 8);
    for (long i = 0; i < c->n_params; i++) p[i] = c->params[i] + 0.1 * rng_normal(&g_rng);
    classifier_loss_grad_f64(c, p, s, x, y, n, g);
    NetCtx k = {c, p, s, x, y, n};
    CHECK(fd_check(net_loss, &k, p, g, c->n_params, "network"), "whole network gradient (%ld parameters)", c->n_params);
    CHECK(classifier_feature_dim(c) == 5 && c->feat_h == 3 && c->feat_w == 3, "feature dim / size");
    free(p); free(g); free(s);
    classifier_free(c);
}

// ---------------------------------------------------------------- save / load, overfitting
static void test_save_load_overfit(void) {
    Dataset d = dataset_load_fashion_mnist(DDM_FASHION_MNIST_DIR, "test");
    enum { n = 64 };
    Classifier *c = classifier_create_arch("8,M,16,M,16", 1, 28, 28, 10, 3);
    float *vel = calloc(c->n_params, sizeof(float));
    int correct = 0, steps = 0;
    double loss = 0;
    for (; steps < 300 && correct < n; steps++)
        loss = classifier_step(c, d.images, d.labels, n, 0.05f, 0.9f, 0, vel, &correct);
    // a few more steps so that eval mode's running statistics settle as well
    for (int i = 0; i < 30; i++) loss = classifier_step(c, d.images, d.labels, n, 0.02f, 0.9f, 0, vel, &correct);
    CHECK(correct == n, "overfit 64 images: %d/%d correct after %d steps (loss %.4f)", correct, n, steps + 30, loss);
    Dataset sub = d;
    sub.n = n;
    float acc = classifier_accuracy(c, &sub);
    CHECK(acc >= 0.95f, "overfit 64 images: eval-mode accuracy %.3f", acc);
    fprintf(stderr, "  overfit: 100%% train accuracy after %d steps, eval accuracy %.3f\n", steps, acc);
    c->test_accuracy = acc;

    char path[64];
    snprintf(path, sizeof path, "/tmp/ddm_test_conv_%d.safetensors", (int)getpid());
    classifier_save(c, path);
    Classifier *c2 = classifier_load(path);
    unlink(path);
    float *l1 = malloc(n * 10 * 4), *l2 = malloc(n * 10 * 4), *f1 = malloc(n * 16 * 4), *f2 = malloc(n * 16 * 4);
    classifier_forward(c, d.images, n, l1, f1);
    classifier_forward(c2, d.images, n, l2, NULL);
    classifier_features(c2, d.images, n, f2);
    CHECK(!memcmp(l1, l2, n * 10 * 4), "save/load: identical logits");
    CHECK(!memcmp(f1, f2, n * 16 * 4), "save/load: identical features");
    CHECK(!strcmp(c2->arch, "8,M,16,M,16") && classifier_feature_dim(c2) == 16 && fabsf(c2->test_accuracy - acc) < 1e-4,
          "save/load: architecture, feature dim, accuracy");
    // features are the penultimate layer: fc(features) = logits
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 10; k++) {
            double z = c->params[c->fc_b_off + k];
            for (int j = 0; j < 16; j++) z += c->params[c->fc_w_off + k * 16 + j] * f1[i * 16 + j];
            if (fabs(z - l1[i * 10 + k]) > worst) worst = fabs(z - l1[i * 10 + k]);
        }
    CHECK(worst < 1e-4, "logits = linear(features): max diff %.3g", worst);
    // chunked evaluation (250 at a time) matches one image at a time
    float one[10];
    classifier_forward(c, d.images + 63 * 784, 1, one, NULL);
    CHECK(close_enough(one, l1 + 63 * 10, 10, 1e-5, 1e-5, "single"), "batch-independent eval forward");

    // determinism: the same steps from the same state give the same bytes
    Classifier *a = classifier_create_arch("4,M,8", 1, 28, 28, 10, 9), *b = classifier_create_arch("4,M,8", 1, 28, 28, 10, 9);
    float *va = calloc(a->n_params, 4), *vb = calloc(b->n_params, 4);
    for (int i = 0; i < 3; i++) {
        classifier_step(a, d.images, d.labels, 32, 0.05f, 0.9f, 5e-4f, va, NULL);
        classifier_step(b, d.images, d.labels, 32, 0.05f, 0.9f, 5e-4f, vb, NULL);
    }
    CHECK(!memcmp(a->params, b->params, a->n_params * 4) && !memcmp(a->stats, b->stats, a->n_stats * 4), "deterministic steps");
    classifier_free(a); classifier_free(b); free(va); free(vb);
    free(l1); free(l2); free(f1); free(f2); free(vel);
    classifier_free(c);
    classifier_free(c2);
    dataset_free(&d);
}

int main(void) {
    rng_init(&g_rng, 42, 0);
    // the finite-difference checks run thousands of tiny kernels: one thread avoids OpenMP's
    // per-region cost (results do not depend on the thread count)
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    test_conv(3);
    test_conv(1);
    test_conv(5);
    test_conv_general(1, 7, 1, 0, 3);
    test_conv_general(7, 1, 1, 3, 0);
    test_conv_general(3, 3, 2, 0, 0);
    test_conv_general(1, 1, 1, 0, 0);
    test_conv_general(5, 5, 1, 2, 2);
    test_pool_general();
    test_bn();
    test_simple();
    test_linear();
    test_network_grad();
    omp_set_num_threads(threads);
    test_save_load_overfit();
    TEST_MAIN_END();
}
