// Float64 finite-difference gradient checks of every layer kernel (the double instantiation of the
// CPU kernels), float32 vs float64 agreement, and adjoint identities of the index shuffles.
#include <string.h>
#include "ops/cpu/cpu_kernels.h"
#include "ops/ops_internal.h"
#include "ops/ops.h"
#include "rng.h"
#include "test.h"

static Rng g_rng;
static void randn(double *x, long n, double s) { for (long i = 0; i < n; i++) x[i] = s * rng_normal(&g_rng); }
static double dot(const double *a, const double *b, long n) { double s = 0; for (long i = 0; i < n; i++) s += a[i] * b[i]; return s; }

// A layer as a scalar function of its inputs: L = <R, f(inputs)>.
static int fd_check(LossFn loss, void *ctx, double *x, const double *g, long n, const char *what) {
    return fd_check_tol(loss, ctx, x, g, n, what, 1e-6, 1e-7, 1e-5);
}

// ---------------------------------------------------------------- linear (gemm + bias)
typedef struct { int N, I, O; double *x, *W, *b, *R, *y; } Lin;
static double lin_loss(void *p) {
    Lin *c = p;
    gemm_f64(0, 1, c->N, c->O, c->I, 1, c->x, c->I, c->W, c->I, 0, c->y, c->O);
    add_bias_f64(c->y, c->b, c->N, c->O);
    return dot(c->y, c->R, (long)c->N * c->O);
}
static void test_linear(void) {
    Lin c = {.N = 5, .I = 7, .O = 3};
    double x[35], W[21], b[3], R[15], y[15], dx[35], dW[21] = {0}, db[3] = {0};
    c.x = x; c.W = W; c.b = b; c.R = R; c.y = y;
    randn(x, 35, 1); randn(W, 21, 1); randn(b, 3, 1); randn(R, 15, 1);
    gemm_f64(0, 0, 5, 7, 3, 1, R, 3, W, 7, 0, dx, 7);      // dx = dy W
    gemm_f64(1, 0, 3, 7, 5, 1, R, 3, x, 7, 1, dW, 7);      // dW += dy^T x
    bias_grad_f64(db, R, 5, 3);
    CHECK(fd_check(lin_loss, &c, x, dx, 35, "linear dx"), "linear dx");
    CHECK(fd_check(lin_loss, &c, W, dW, 21, "linear dW"), "linear dW");
    CHECK(fd_check(lin_loss, &c, b, db, 3, "linear db"), "linear db");
}

// ---------------------------------------------------------------- layernorm + modulate
typedef struct { int B, T, C, S; double *x, *mod, *R, *out, *mean, *rstd; } Ln;
static double ln_loss(void *p) {
    Ln *c = p;
    ln_modulate_fwd_f64(c->out, c->mean, c->rstd, c->x, c->mod, c->mod + c->C, c->B, c->T, c->C, c->S);
    return dot(c->out, c->R, (long)c->B * c->T * c->C);
}
static void test_ln_modulate(void) {
    enum { B = 2, T = 3, C = 5, S = 3 * C };   // modulation rows wider than 2C, as in a block
    double x[B * T * C], mod[B * S], R[B * T * C], out[B * T * C], mean[B * T], rstd[B * T];
    double dx[B * T * C] = {0}, dmod[B * S] = {0};
    Ln c = {B, T, C, S, x, mod, R, out, mean, rstd};
    randn(x, B * T * C, 2); randn(mod, B * S, 0.5); randn(R, B * T * C, 1);
    for (int i = 0; i < B * T * C; i++) x[i] += 3;   // a non-zero mean
    ln_loss(&c);
    ln_modulate_bwd_f64(dx, dmod, dmod + C, R, x, mean, rstd, mod + C, B, T, C, S);
    CHECK(fd_check(ln_loss, &c, x, dx, B * T * C, "ln dx"), "ln_modulate dx");
    CHECK(fd_check(ln_loss, &c, mod, dmod, B * S, "ln dshift/dscale"), "ln_modulate dshift/dscale");
    // the part of the modulation row the layer does not read must get no gradient
    int untouched = 1;
    for (int b = 0; b < B; b++) for (int i = 2 * C; i < S; i++) untouched &= dmod[b * S + i] == 0;
    CHECK(untouched, "ln_modulate wrote outside shift/scale");
    // dx accumulates: a second call doubles it
    double dx2[B * T * C];
    memcpy(dx2, dx, sizeof dx);
    ln_modulate_bwd_f64(dx2, dmod, dmod + C, R, x, mean, rstd, mod + C, B, T, C, S);
    int doubled = 1;
    for (int i = 0; i < B * T * C; i++) doubled &= fabs(dx2[i] - 2 * dx[i]) < 1e-12;
    CHECK(doubled, "ln_modulate_bwd accumulates into dx");
}

// ---------------------------------------------------------------- attention
typedef struct { int B, T, C, NH; double *qkv, *R, *out, *att; } Att;
static double att_loss(void *p) {
    Att *c = p;
    attention_fwd_f64(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH);
    return dot(c->out, c->R, (long)c->B * c->T * c->C);
}
static void test_attention(void) {
    enum { B = 2, T = 4, C = 6, NH = 3 };
    double qkv[B * T * 3 * C], R[B * T * C], out[B * T * C], saved[B * NH * T * (T + 1)];
    double dqkv[B * T * 3 * C], *lse = saved + B * NH * T * T;
    CHECK(cpu_attention_saved(B, T, C, NH) == (size_t)B * NH * T * (T + 1),
          "the CPU attention keeps the probabilities and one statistic per row");
    Att c = {B, T, C, NH, qkv, R, out, saved};
    randn(qkv, B * T * 3 * C, 1); randn(R, B * T * C, 1);
    att_loss(&c);
    attention_bwd_f64(dqkv, R, qkv, out, saved, B, T, C, NH);
    CHECK(fd_check(att_loss, &c, qkv, dqkv, B * T * 3 * C, "attention dqkv"), "attention dqkv");
    // the saved statistic is each row's log-sum-exp of the scaled scores q_i . k_j / sqrt(head dim)
    int hd = C / NH;
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double s = 0;
                for (int j = 0; j < T; j++) {
                    double d = 0;
                    for (int k = 0; k < hd; k++)
                        d += qkv[(b * T + i) * 3 * C + h * hd + k] * qkv[(b * T + j) * 3 * C + C + h * hd + k];
                    s += exp(d / sqrt((double)hd));
                }
                worst = fmax(worst, fabs(lse[(b * NH + h) * T + i] - log(s)));
            }
    CHECK(worst < 1e-12, "attention's saved row statistic is the log-sum-exp (off by %g)", worst);
}

// ---------------------------------------------------------------- pointwise activations
typedef struct { long n; double *x, *R, *y; void (*f)(double *, const double *, long); } Act;
static double act_loss(void *p) { Act *c = p; c->f(c->y, c->x, c->n); return dot(c->y, c->R, c->n); }
static void test_activation(const char *name, void (*f)(double *, const double *, long),
                            void (*bwd)(double *, const double *, const double *, long)) {
    enum { N = 40 };
    double x[N], R[N], y[N], dx[N];
    randn(x, N, 3); randn(R, N, 1);
    Act c = {N, x, R, y, f};
    bwd(dx, R, x, N);
    CHECK(fd_check(act_loss, &c, x, dx, N, name), "%s dx", name);
}

// ---------------------------------------------------------------- gated residual
typedef struct { int B, T, C, S; double *x0, *x, *gate, *branch, *R; } Gr;
static double gr_loss(void *p) {
    Gr *c = p;
    long n = (long)c->B * c->T * c->C;
    memcpy(c->x, c->x0, n * sizeof(double));
    gated_residual_fwd_f64(c->x, c->gate, c->branch, c->B, c->T, c->C, c->S);
    return dot(c->x, c->R, n);
}
static void test_gated_residual(void) {
    enum { B = 2, T = 3, C = 4, S = 6 * C };
    double x0[B * T * C], x[B * T * C], gate[B * S], branch[B * T * C], R[B * T * C];
    double dbranch[B * T * C], dgate[B * S] = {0};
    Gr c = {B, T, C, S, x0, x, gate, branch, R};
    randn(x0, B * T * C, 1); randn(gate, B * S, 1); randn(branch, B * T * C, 1); randn(R, B * T * C, 1);
    gated_residual_bwd_f64(dbranch, dgate, R, gate, branch, B, T, C, S);
    CHECK(fd_check(gr_loss, &c, branch, dbranch, B * T * C, "gated dbranch"), "gated_residual dbranch");
    CHECK(fd_check(gr_loss, &c, gate, dgate, B * S, "gated dgate"), "gated_residual dgate");
}

// ---------------------------------------------------------------- embedding
typedef struct { int B, C; const int *idx; double *table, *R, *out; } Emb;
static double emb_loss(void *p) { Emb *c = p; embed_fwd_f64(c->out, c->table, c->idx, c->B, c->C); return dot(c->out, c->R, (long)c->B * c->C); }
static void test_embed(void) {
    enum { B = 4, C = 3, ROWS = 5 };
    int idx[B] = {1, 4, 1, 0};   // a repeated row must accumulate
    double table[ROWS * C], R[B * C], out[B * C], dtable[ROWS * C] = {0};
    randn(table, ROWS * C, 1); randn(R, B * C, 1);
    Emb c = {B, C, idx, table, R, out};
    embed_bwd_f64(dtable, R, idx, B, C);
    CHECK(fd_check(emb_loss, &c, table, dtable, ROWS * C, "embed dtable"), "embed dtable");
}

// ---------------------------------------------------------------- index shuffles: <P x, y> = <x, P^T y>
static void test_patch_adjoints(void) {
    enum { B = 2, C = 3, H = 4, W = 6, P = 2, N = B * C * H * W };
    double img[N], tok[N], back[N], other[N];
    randn(img, N, 1); randn(other, N, 1);
    patchify_f64(tok, img, B, C, H, W, P);
    patchify_bwd_f64(back, other, B, C, H, W, P);
    CHECK(fabs(dot(tok, other, N) - dot(img, back, N)) < 1e-10, "patchify_bwd is the adjoint of patchify");
    unpatchify_f64(tok, img, B, C, H, W, P);
    unpatchify_bwd_f64(back, other, B, C, H, W, P);
    CHECK(fabs(dot(tok, other, N) - dot(img, back, N)) < 1e-10, "unpatchify_bwd is the adjoint of unpatchify");
    // the conv-weight order: pixel (c, i, j) of patch (0, 1) sits at token 1, channel (c*P + i)*P + j
    patchify_f64(tok, img, B, C, H, W, P);
    CHECK(tok[1 * C * P * P + (2 * P + 1) * P + 0] == img[(2 * H + 1) * W + 1 * P + 0], "patchify layout");
    // DiT's unpatchify: channel (i*P + j)*C + c of token (0, 1) is pixel (c, i, P + j)
    unpatchify_f64(img, tok, B, C, H, W, P);
    CHECK(img[(2 * H + 1) * W + P + 0] == tok[1 * C * P * P + (1 * P + 0) * C + 2], "unpatchify layout");
}

// ---------------------------------------------------------------- float kernels agree with double
static void test_f32_matches_f64(void) {
    enum { B = 2, T = 5, C = 8, NH = 2 };
    double qkv[B * T * 3 * C], out[B * T * C], att[B * NH * T * (T + 1)];
    float qf[B * T * 3 * C], of[B * T * C], af[B * NH * T * (T + 1)], ref[B * T * C];
    randn(qkv, B * T * 3 * C, 1);
    for (int i = 0; i < B * T * 3 * C; i++) qf[i] = (float)qkv[i];
    attention_fwd_f64(out, att, qkv, B, T, C, NH);
    ops_cpu.attention_fwd(of, af, qf, B, T, C, NH);
    for (int i = 0; i < B * T * C; i++) ref[i] = (float)out[i];
    CHECK(close_enough(of, ref, B * T * C, 1e-6, 1e-5, "attention f32"), "attention f32 vs f64");
    // GELU's float path uses a vectorised tanh: it must stay within float rounding of the double one,
    // over the whole range including the saturated tails.
    enum { N = 4001 };
    static double xd[N], yd[N], gd[N], ones[N];
    static float xf[N], yf[N], gf[N], onesf[N], yr[N], gr[N];
    for (int i = 0; i < N; i++) { xd[i] = -20 + 40.0 * i / (N - 1); xf[i] = (float)xd[i]; ones[i] = 1; onesf[i] = 1; }
    gelu_fwd_f64(yd, xd, N);
    gelu_bwd_f64(gd, ones, xd, N);
    ops_cpu.gelu_fwd(yf, xf, N);
    ops_cpu.gelu_bwd(gf, onesf, xf, N);
    for (int i = 0; i < N; i++) { yr[i] = (float)yd[i]; gr[i] = (float)gd[i]; }
    CHECK(close_enough(yf, yr, N, 2e-6, 1e-5, "gelu f32"), "gelu f32 vs f64");
    CHECK(close_enough(gf, gr, N, 2e-6, 1e-5, "gelu' f32"), "gelu backward f32 vs f64");
}

static void test_adamw_matches_formula(void) {
    float p[3] = {1, -2, 0.5f}, g[3] = {0.1f, -0.3f, 0}, m[3] = {0}, v[3] = {0};
    ops_cpu.adamw(p, g, m, v, 3, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 1 - 0.9f, 1 - 0.999f);
    // first step: mhat = g, vhat = g^2, so the step is lr * sign(g) (up to eps) plus decay lr*wd*p
    double want0 = 1 - 0.01 * 0.1 * 1 - 0.01 * 0.1 / (0.1 + 1e-8);
    double want2 = 0.5 - 0.01 * 0.1 * 0.5;
    CHECK(fabs(p[0] - want0) < 1e-6 && fabs(p[2] - want2) < 1e-7, "adamw first step: %g %g", p[0], p[2]);
}

int main(void) {
    rng_init(&g_rng, 7, 0);
    test_linear();
    test_ln_modulate();
    test_attention();
    test_activation("gelu", gelu_fwd_f64, gelu_bwd_f64);
    test_activation("silu", silu_fwd_f64, silu_bwd_f64);
    test_gated_residual();
    test_embed();
    test_patch_adjoints();
    test_f32_matches_f64();
    test_adamw_matches_formula();
    TEST_MAIN_END();
}
