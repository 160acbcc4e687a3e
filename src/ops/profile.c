#include "ops/profile.h"
#include <string.h>
#include "common.h"

enum { P_GEMM, P_BIAS, P_BIAS_GRAD, P_BROADCAST, P_LN_FWD, P_LN_BWD, P_ATT_FWD, P_ATT_BWD, P_GELU_FWD,
       P_GELU_BWD, P_SILU_FWD, P_SILU_BWD, P_GATE_FWD, P_GATE_BWD, P_PATCH, P_PATCH_BWD, P_UNPATCH,
       P_UNPATCH_BWD, P_EMBED_FWD, P_EMBED_BWD, P_AXPY, P_SCALE, P_SUMSQ, P_ADAMW, P_EMA, P_COPY, P_ZERO, P_N };

static const char *names[P_N] = {
    "gemm", "add_bias", "bias_grad", "add_broadcast", "ln_modulate_fwd", "ln_modulate_bwd", "attention_fwd",
    "attention_bwd", "gelu_fwd", "gelu_bwd", "silu_fwd", "silu_bwd", "gated_residual_fwd", "gated_residual_bwd",
    "patchify", "patchify_bwd", "unpatchify", "unpatchify_bwd", "embed_fwd", "embed_bwd", "axpy", "scale",
    "sumsq", "adamw", "ema", "copy", "zero"};

static const Ops *g_inner;
static Ops g_table;
static OpPhase g_phase;
static double g_sec[P_N][PHASE_COUNT];
static long g_calls[P_N][PHASE_COUNT];

#define TIMED(id, call) do { double t0_ = now_seconds(); call; \
    g_sec[id][g_phase] += now_seconds() - t0_; g_calls[id][g_phase]++; } while (0)

static void w_gemm(int ta, int tb, int M, int N, int K, float al, const float *A, int lda, const float *B, int ldb,
                   float be, float *C, int ldc) { TIMED(P_GEMM, g_inner->gemm(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc)); }
static void w_bias(float *y, const float *b, int r, int c) { TIMED(P_BIAS, g_inner->add_bias(y, b, r, c)); }
static void w_bias_grad(float *db, const float *dy, int r, int c) { TIMED(P_BIAS_GRAD, g_inner->bias_grad(db, dy, r, c)); }
static void w_broadcast(float *x, const float *a, int B, long n) { TIMED(P_BROADCAST, g_inner->add_broadcast(x, a, B, n)); }
static void w_ln_fwd(float *o, float *m, float *r, const float *x, const float *sh, const float *sc, int B, int T, int C,
                     int s) { TIMED(P_LN_FWD, g_inner->ln_modulate_fwd(o, m, r, x, sh, sc, B, T, C, s)); }
static void w_ln_bwd(float *dx, float *dsh, float *dsc, const float *dy, const float *x, const float *m, const float *r,
                     const float *sc, int B, int T, int C, int s) {
    TIMED(P_LN_BWD, g_inner->ln_modulate_bwd(dx, dsh, dsc, dy, x, m, r, sc, B, T, C, s));
}
static void w_att_fwd(float *o, float *a, const float *q, int B, int T, int C, int NH) { TIMED(P_ATT_FWD, g_inner->attention_fwd(o, a, q, B, T, C, NH)); }
static void w_att_bwd(float *dq, float *s, const float *dy, const float *q, const float *a, int B, int T, int C, int NH) {
    TIMED(P_ATT_BWD, g_inner->attention_bwd(dq, s, dy, q, a, B, T, C, NH));
}
static void w_gelu_fwd(float *y, const float *x, long n) { TIMED(P_GELU_FWD, g_inner->gelu_fwd(y, x, n)); }
static void w_gelu_bwd(float *dx, const float *dy, const float *x, long n) { TIMED(P_GELU_BWD, g_inner->gelu_bwd(dx, dy, x, n)); }
static void w_silu_fwd(float *y, const float *x, long n) { TIMED(P_SILU_FWD, g_inner->silu_fwd(y, x, n)); }
static void w_silu_bwd(float *dx, const float *dy, const float *x, long n) { TIMED(P_SILU_BWD, g_inner->silu_bwd(dx, dy, x, n)); }
static void w_gate_fwd(float *x, const float *g, const float *b, int B, int T, int C, int s) { TIMED(P_GATE_FWD, g_inner->gated_residual_fwd(x, g, b, B, T, C, s)); }
static void w_gate_bwd(float *db, float *dg, const float *dx, const float *g, const float *b, int B, int T, int C, int s) {
    TIMED(P_GATE_BWD, g_inner->gated_residual_bwd(db, dg, dx, g, b, B, T, C, s));
}
static void w_patch(float *t, const float *i, int B, int C, int H, int W, int p) { TIMED(P_PATCH, g_inner->patchify(t, i, B, C, H, W, p)); }
static void w_patch_bwd(float *d, const float *t, int B, int C, int H, int W, int p) { TIMED(P_PATCH_BWD, g_inner->patchify_bwd(d, t, B, C, H, W, p)); }
static void w_unpatch(float *i, const float *t, int B, int C, int H, int W, int p) { TIMED(P_UNPATCH, g_inner->unpatchify(i, t, B, C, H, W, p)); }
static void w_unpatch_bwd(float *d, const float *i, int B, int C, int H, int W, int p) { TIMED(P_UNPATCH_BWD, g_inner->unpatchify_bwd(d, i, B, C, H, W, p)); }
static void w_embed_fwd(float *o, const float *t, const int *i, int B, int C) { TIMED(P_EMBED_FWD, g_inner->embed_fwd(o, t, i, B, C)); }
static void w_embed_bwd(float *d, const float *o, const int *i, int B, int C) { TIMED(P_EMBED_BWD, g_inner->embed_bwd(d, o, i, B, C)); }
static void w_axpy(float *y, float a, const float *x, size_t n) { TIMED(P_AXPY, g_inner->axpy(y, a, x, n)); }
static void w_scale(float *x, float s, size_t n) { TIMED(P_SCALE, g_inner->scale(x, s, n)); }
static double w_sumsq(const float *x, size_t n) { double r; TIMED(P_SUMSQ, r = g_inner->sumsq(x, n)); return r; }
static void w_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                    float wd, float c1, float c2) { TIMED(P_ADAMW, g_inner->adamw(p, g, m, v, n, lr, b1, b2, eps, wd, c1, c2)); }
static void w_ema(float *e, const float *p, size_t n, float d) { TIMED(P_EMA, g_inner->ema(e, p, n, d)); }
static void w_copy(float *d, const float *s, size_t n) { TIMED(P_COPY, g_inner->copy(d, s, n)); }
static void w_zero(float *p, size_t n) { TIMED(P_ZERO, g_inner->zero(p, n)); }

const Ops *ops_profile_wrap(const Ops *inner) {
    g_inner = inner;
    g_table = (Ops){
        .name = "profiled", .alloc = inner->alloc, .free = inner->free, .to_device = inner->to_device,
        .to_host = inner->to_host, .copy = w_copy, .zero = w_zero, .gemm = w_gemm, .add_bias = w_bias,
        .bias_grad = w_bias_grad, .add_broadcast = w_broadcast, .ln_modulate_fwd = w_ln_fwd,
        .ln_modulate_bwd = w_ln_bwd, .attention_fwd = w_att_fwd, .attention_bwd = w_att_bwd,
        .gelu_fwd = w_gelu_fwd, .gelu_bwd = w_gelu_bwd, .silu_fwd = w_silu_fwd, .silu_bwd = w_silu_bwd,
        .gated_residual_fwd = w_gate_fwd, .gated_residual_bwd = w_gate_bwd, .patchify = w_patch,
        .patchify_bwd = w_patch_bwd, .unpatchify = w_unpatch, .unpatchify_bwd = w_unpatch_bwd,
        .embed_fwd = w_embed_fwd, .embed_bwd = w_embed_bwd, .axpy = w_axpy, .scale = w_scale,
        .sumsq = w_sumsq, .adamw = w_adamw, .ema = w_ema};
    ops_profile_reset();
    return &g_table;
}

void ops_profile_phase(OpPhase p) { g_phase = p; }

void ops_profile_reset(void) {
    memset(g_sec, 0, sizeof g_sec);
    memset(g_calls, 0, sizeof g_calls);
    g_phase = PHASE_FORWARD;
}

int ops_profile_report(OpTiming *out, int max) {
    int n = 0;
    for (int i = 0; i < P_N && n < max; i++) {
        long calls = 0;
        for (int p = 0; p < PHASE_COUNT; p++) calls += g_calls[i][p];
        if (!calls) continue;
        out[n].name = names[i];
        for (int p = 0; p < PHASE_COUNT; p++) { out[n].seconds[p] = g_sec[i][p]; out[n].calls[p] = g_calls[i][p]; }
        n++;
    }
    return n;
}
