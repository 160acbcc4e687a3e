// Every op of the CUDA tables against the CPU op (or a float64 reference) on random inputs: fp32 with strict
// fp32 GEMMs (DDM_CUDA_TF32=0's mode) to tight tolerances, the TF32 and bf16 matrix products to bounds derived
// from their input rounding (as tests/test_bf16.c derives the bf16 ones). Outputs are poisoned with NaN first, so
// an element an op fails to write fails the check; accumulating outputs start from random values. Skipped (exit 0,
// one line) without a GPU. Built by `make cuda`, run by tests/gpu/run.sh; not part of `make test`.
#include <stdint.h>
#include "ops/cpu/gemm_bf16.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/ops.h"
#include "rng.h"
#include "../test.h"

static const Ops *G, *G16;   // cuda fp32, cuda bf16
static const Ops *C;   // the CPU table of this machine's x86-64 level (set in main: chosen at start-up)
static Rng g_rng;
static const double U24 = 1.0 / (1 << 24), U8 = 1.0 / (1 << 8), U_TF32 = 1.0 / (1 << 10);

// ---------------------------------------------------------------- helpers

static float *hrand(size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = scale * (2 * rng_uniform(&g_rng) - 1);
    return x;
}
static float *hcopy(const float *x, size_t n) { float *y = malloc((n ? n : 1) * sizeof(float)); memcpy(y, x, n * sizeof(float)); return y; }
static float *up(const float *h, size_t n) { float *d = ops_alloc_f32(G, n); ops_upload_f32(G, d, h, n); return d; }
static float *poisoned(size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    float *d = up(h, n);
    free(h);
    return d;
}
static float *down(const float *d, size_t n) { float *h = malloc((n ? n : 1) * sizeof(float)); ops_download_f32(G, h, d, n); return h; }
static void gfree(void *p) { G->free(p); }

// max |got - want| / (atol + rtol |want|) <= 1 everywhere, NaN never passes (test.h's close_enough)
static int near(const char *what, const float *got, const float *want, size_t n, double atol, double rtol) {
    return close_enough(got, want, (long)n, atol, rtol, what);
}
static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }
static double maxabs(const float *x, size_t n) { double m = 0; for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i])); return m; }
// max |got - want| / max |want|; NaN gives infinity
static double normwise(const float *got, const float *want, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
    }
    return e / (maxabs(want, n) + 1e-300);
}

// ---------------------------------------------------------------- matrix products against float64

enum { MODE_STRICT, MODE_TF32, MODE_BF16 };

// One product through `fn`, checked element by element against float64: strict fp32 within the fp32 summation
// bound (K + 8) u24 sum|alpha a b| (+ the beta term); TF32 inputs rounded (or truncated: the conversion's rounding
// is not documented) to 10 mantissa bits, so (2 u + u^2) sum|alpha a b| more, u = 2^-10; bf16 inputs rounded to
// nearest even exactly as the CPU's model (bf16_from_float): within the fp32 bound of the product of the rounded
// inputs, and (2 u8 + u8^2) of the exact one. Tensor cores need not round each fp32 addition to nearest: their
// summation bounds are doubled. beta == 0 must not read C (NaN there).
static int check_gemm(int mode, int ta, int tb, int M, int N, int K, float alpha, float beta, int pad) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc;
    float *A = hrand(na, 1), *B = hrand(nb, 3), *C0 = hrand(nc, 2);
    if (beta == 0) for (long i = 0; i < nc; i++) if (i % ldc < N) C0[i] = NAN;
    float *dA = up(A, na), *dB = up(B, nb), *dC = up(C0, nc);
    const Ops *o = mode == MODE_BF16 ? G16 : G;
    int old = ops_cuda_set_tf32(mode == MODE_TF32);
    o->gemm(ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
    ops_cuda_set_tf32(old);
    float *Cg = down(dC, nc);
    double worst = 0;
    int pad_ok = 1;
    double fac = mode == MODE_STRICT ? 1 : 2, uin = mode == MODE_TF32 ? U_TF32 : mode == MODE_BF16 ? U8 : 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0, sr = 0, sra = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(long)k * lda + i] : A[(long)i * lda + k], b = tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
                s += (double)a * b;
                sa += fabs((double)a * b);
                double ar = bf16_to_float(bf16_from_float(a)), br = bf16_to_float(bf16_from_float(b));
                sr += ar * br;
                sra += fabs(ar * br);
            }
            double c0 = beta == 0 ? 0 : (double)beta * C0[(long)i * ldc + j], got = Cg[(long)i * ldc + j];
            double sum_term = fac * (K + 8) * U24 * (fabs(alpha) * sa + fabs(c0)) + 1e-37;
            double bound = (2 * uin + uin * uin) * fabs(alpha) * sa + sum_term;
            double r = fabs(got - (alpha * s + c0)) / bound;
            if (!(r <= worst)) worst = r;
            if (mode == MODE_BF16) {   // the rounding is round-to-nearest-even, not just any rounding
                double rr = fabs(got - (alpha * sr + c0)) / (fac * (K + 8) * U24 * (fabs(alpha) * sra + fabs(c0)) + 1e-37);
                if (!(rr <= worst)) worst = rr;
            }
        }
        for (int j = N; j < ldc; j++) pad_ok &= memcmp(&Cg[(long)i * ldc + j], &C0[(long)i * ldc + j], 4) == 0;
    }
    int ok = worst <= 1 && pad_ok;
    if (!ok)
        fprintf(stderr, "  gemm mode %d %c%c M %d N %d K %d alpha %g beta %g pad %d: error/bound %.3g%s\n", mode, "NT"[ta],
                "NT"[tb], M, N, K, alpha, beta, pad, worst, pad_ok ? "" : ", wrote past N");
    gfree(dA); gfree(dB); gfree(dC);
    free(A); free(B); free(C0); free(Cg);
    return ok;
}

static void test_gemm(void) {
    static const int mn[] = {1, 33, 130}, ks[] = {1, 64, 257};
    static const float ab[][2] = {{1, 0}, {-0.75f, 1}, {2.5f, -0.5f}};
    static const char *names[] = {"strict fp32", "TF32", "bf16"};
    for (int mode = 0; mode < 3; mode++) {
        int fails = 0, n = 0;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++)
                        for (int k = 0; k < 3; k++, n++) {
                            const float *s = ab[(a + b + k) % 3];
                            fails += !check_gemm(mode, ta, tb, mn[a], mn[b], ks[k], s[0], s[1], (a + 2 * b + k) % 4);
                        }
        fails += !check_gemm(mode, 0, 1, 512, 384, 1152, 1, 0, 0);   // a model-sized product (fc-like, x W^T)
        fails += !check_gemm(mode, 1, 0, 96, 200, 2048, 1, 1, 0);   // a weight gradient (dy^T x, accumulating)
        CHECK(fails == 0, "%s gemm: %d of %d products outside the bounds", names[mode], fails, n + 2);
        CHECK(check_gemm(mode, 0, 0, 5, 6, 0, 1, 0.5f, 1) && check_gemm(mode, 1, 1, 5, 6, 4, 0, 0, 1),
              "%s gemm: K = 0 and alpha = 0 give beta * C", names[mode]);
    }
}

// gemm_fp32 is strict fp32 even with TF32 on and in the bf16 table; syrk fills the upper triangle (j >= i).
static void test_gemm_fp32_syrk(void) {
    enum { M = 37, N = 45, K = 300 };
    float *A = hrand(M * K, 1), *B = hrand(K * N, 1), *Cc = hrand(M * N, 1);
    float *dA = up(A, M * K), *dB = up(B, K * N), *dC = up(Cc, M * N), *dC2 = up(Cc, M * N);
    int old = ops_cuda_set_tf32(1);
    G->gemm_fp32(0, 0, M, N, K, 1.5f, dA, K, dB, N, 0.5f, dC, N);
    G16->gemm_fp32(0, 0, M, N, K, 1.5f, dA, K, dB, N, 0.5f, dC2, N);
    ops_cuda_set_tf32(old);
    float *g1 = down(dC, M * N), *g2 = down(dC2, M * N), *want = hcopy(Cc, M * N);
    C->gemm_fp32(0, 0, M, N, K, 1.5f, A, K, B, N, 0.5f, want, N);
    // both fp32 with K = 300 terms: the difference of two fp32 summations, 2 (K + 8) u24 of sum|a b| ~ 4e-5 * 8
    CHECK(near("gemm_fp32", g1, want, M * N, 2e-4, 1e-5) && near("gemm_fp32 (bf16 table)", g2, want, M * N, 2e-4, 1e-5),
          "gemm_fp32 is strict fp32 in both tables, with TF32 on");
    float *S0 = hrand(M * M, 1), *dS = up(S0, M * M), *Sw = hcopy(S0, M * M);
    G->syrk(M, K, 0.7f, dA, K, 0.25f, dS, M);
    C->syrk(M, K, 0.7f, A, K, 0.25f, Sw, M);
    float *Sg = down(dS, M * M);
    int ok = 1;
    for (int i = 0; i < M; i++)
        for (int j = i; j < M; j++) ok &= fabs(Sg[i * M + j] - Sw[i * M + j]) <= 1e-4 + 1e-5 * fabs(Sw[i * M + j]);
    CHECK(ok, "syrk: the upper triangle as the CPU's");
    gfree(dA); gfree(dB); gfree(dC); gfree(dC2); gfree(dS);
    free(A); free(B); free(Cc); free(g1); free(g2); free(want); free(S0); free(Sw); free(Sg);
}

// ---------------------------------------------------------------- memory ops

static void test_memory(void) {
    enum { N = 1000 };
    float *h = hrand(N, 1), *d = up(h, N);
    float *back = down(d, N);
    CHECK(same_bits(back, h, N), "upload / download round trip");
    float *z = G->alloc(N * sizeof(float)), *zh = down(z, N);
    int zero = 1;
    for (int i = 0; i < N; i++) zero &= zh[i] == 0;
    CHECK(zero, "alloc is zero-filled");
    G->copy(z, d, N);
    free(zh); zh = down(z, N);
    CHECK(same_bits(zh, h, N), "copy");
    G->copy(d + 10, d, 500);   // overlapping, forwards: memmove semantics
    float *w = hcopy(h, N);
    memmove(w + 10, w, 500 * sizeof(float));
    free(back); back = down(d, N);
    CHECK(same_bits(back, w, N), "copy of overlapping ranges (memmove)");
    G->zero(d + 3, 7);
    memset(w + 3, 0, 7 * sizeof(float));
    free(back); back = down(d, N);
    CHECK(same_bits(back, w, N), "zero");
    G->free(NULL);
    G->synchronize();
    gfree(d); gfree(z);
    free(h); free(back); free(zh); free(w);
}

// ---------------------------------------------------------------- layers

static void test_bias(void) {
    enum { R = 1000, Cc = 77 };
    float *y = hrand(R * Cc, 1), *b = hrand(Cc, 1), *dbias = hrand(Cc, 1);
    float *dy = up(y, R * Cc), *db = up(b, Cc), *dd = up(dbias, Cc);
    G->add_bias(dy, db, R, Cc);
    G->bias_grad(dd, dy, R, Cc);
    C->add_bias(y, b, R, Cc);
    C->bias_grad(dbias, y, R, Cc);
    float *gy = down(dy, R * Cc), *gd = down(dd, Cc);
    CHECK(same_bits(gy, y, R * Cc), "add_bias (exact)");
    // both sum 1000 rows in double, in different groupings, then round once: within one float rounding
    CHECK(near("bias_grad", gd, dbias, Cc, 1e-6, 2 * U24), "bias_grad accumulates the column sums");
    float *x = hrand(3 * 50, 1), *ra = hrand(50, 1), *dx = up(x, 150), *dra = up(ra, 50);
    G->add_broadcast(dx, dra, 3, 50);
    C->add_broadcast(x, ra, 3, 50);
    float *gx = down(dx, 150);
    CHECK(same_bits(gx, x, 150), "add_broadcast (exact)");
    gfree(dy); gfree(db); gfree(dd); gfree(dx); gfree(dra);
    free(y); free(b); free(dbias); free(gy); free(gd); free(x); free(ra); free(gx);
}

static void test_layernorm(void) {
    enum { B = 3, T = 19, Cc = 150, MS = 6 * Cc };
    size_t n = (size_t)B * T * Cc;
    float *x = hrand(n, 2), *mod = hrand(B * MS, 0.5f), *dout = hrand(n, 1);
    for (size_t i = 0; i < n; i++) x[i] += 0.3f * (float)(i % 7);   // a non-zero mean per row
    float *dx = up(x, n), *dmod = up(mod, B * MS), *ddout = up(dout, n);
    float *out = poisoned(n), *mean = poisoned(B * T), *rstd = poisoned(B * T);
    const float *sh = dmod + 2 * Cc, *sc = dmod + 4 * Cc;   // shift and scale inside a [B, 6C] modulation
    G->ln_modulate_fwd(out, mean, rstd, dx, sh, sc, B, T, Cc, MS);
    float *hout = malloc(n * 4), *hmean = malloc(B * T * 4), *hrstd = malloc(B * T * 4);
    C->ln_modulate_fwd(hout, hmean, hrstd, x, mod + 2 * Cc, mod + 4 * Cc, B, T, Cc, MS);
    float *gout = down(out, n), *gmean = down(mean, B * T), *grstd = down(rstd, B * T);
    // the same double arithmetic, different summation grouping: a few float roundings
    CHECK(near("ln out", gout, hout, n, 1e-6, 4 * U24) && near("ln mean", gmean, hmean, B * T, 1e-7, 2 * U24) &&
          near("ln rstd", grstd, hrstd, B * T, 0, 2 * U24), "ln_modulate_fwd");
    // backward: dx accumulates onto random values; dshift, dscale accumulate at their strides
    float *dxin = hrand(n, 1), *dmod0 = hrand(B * MS, 1);
    float *g_dx = up(dxin, n), *g_dmod = up(dmod0, B * MS);
    ops_upload_f32(G, mean, hmean, B * T);   // the backward op on the same inputs as the CPU's
    ops_upload_f32(G, rstd, hrstd, B * T);
    G->ln_modulate_bwd(g_dx, g_dmod + 3 * Cc, g_dmod + 5 * Cc, ddout, dx, mean, rstd, sc, B, T, Cc, MS);
    C->ln_modulate_bwd(dxin, dmod0 + 3 * Cc, dmod0 + 5 * Cc, dout, x, hmean, hrstd, mod + 4 * Cc, B, T, Cc, MS);
    float *h_dx = down(g_dx, n), *h_dmod = down(g_dmod, B * MS);
    CHECK(near("ln dx", h_dx, dxin, n, 1e-6, 8 * U24), "ln_modulate_bwd dx (accumulates)");
    // dshift is the same float sum in the same order (bit-identical); dscale's terms agree to rounding
    CHECK(near("ln dshift/dscale", h_dmod, dmod0, B * MS, 1e-6, 16 * U24), "ln_modulate_bwd dshift, dscale (accumulate)");
    gfree(dx); gfree(dmod); gfree(ddout); gfree(out); gfree(mean); gfree(rstd); gfree(g_dx); gfree(g_dmod);
    free(x); free(mod); free(dout); free(hout); free(hmean); free(hrstd); free(gout); free(gmean); free(grstd);
    free(dxin); free(dmod0); free(h_dx); free(h_dmod);
}

static void test_activations(void) {
    enum { N = 20000 };
    float *x = hrand(N, 6), *dy = hrand(N, 1);
    x[0] = 0; x[1] = 20; x[2] = -20; x[3] = 1e-8f;
    float *dx = up(x, N), *ddy = up(dy, N), *y = poisoned(N), *g = poisoned(N);
    float *hy = malloc(N * 4), *hg = malloc(N * 4);
    struct { const char *name; void (*gf)(float *, const float *, long); void (*cf)(float *, const float *, long);
             void (*gb)(float *, const float *, const float *, long); void (*cb)(float *, const float *, const float *, long); } acts[] = {
        {"gelu", G->gelu_fwd, C->gelu_fwd, G->gelu_bwd, C->gelu_bwd}, {"silu", G->silu_fwd, C->silu_fwd, G->silu_bwd, C->silu_bwd}};
    for (int k = 0; k < 2; k++) {
        acts[k].gf(y, dx, N);
        acts[k].cf(hy, x, N);
        acts[k].gb(g, ddy, dx, N);
        acts[k].cb(hg, dy, x, N);
        float *gy = down(y, N), *gg = down(g, N);
        // the CPU's tanh / exp approximations are within ~2e-7 absolute of libm; CUDA's within a few ulp
        CHECK(near(acts[k].name, gy, hy, N, 1e-6, 1e-6) && near(acts[k].name, gg, hg, N, 4e-6, 1e-5), "%s fwd, bwd",
              acts[k].name);
        ops_upload_f32(G, g, dy, N);   // dx may alias dy
        acts[k].gb(g, g, dx, N);
        float *ga = down(g, N);
        CHECK(near(acts[k].name, ga, hg, N, 4e-6, 1e-5), "%s bwd in place (dx = dy)", acts[k].name);
        free(gy); free(gg); free(ga);
    }
    gfree(dx); gfree(ddy); gfree(y); gfree(g);
    free(x); free(dy); free(hy); free(hg);
}

static void test_gated(void) {
    enum { B = 4, T = 33, Cc = 40, GS = 6 * Cc };
    size_t n = (size_t)B * T * Cc;
    float *x = hrand(n, 1), *gate = hrand(B * GS, 1), *br = hrand(n, 1), *dxx = hrand(n, 1), *dg0 = hrand(B * GS, 1);
    float *g_x = up(x, n), *g_gate = up(gate, B * GS), *g_br = up(br, n), *g_dxx = up(dxx, n), *g_dg = up(dg0, B * GS);
    float *g_dbr = poisoned(n);
    G->gated_residual_fwd(g_x, g_gate + Cc, g_br, B, T, Cc, GS);
    C->gated_residual_fwd(x, gate + Cc, br, B, T, Cc, GS);
    G->gated_residual_bwd(g_dbr, g_dg + 2 * Cc, g_dxx, g_gate + Cc, g_br, B, T, Cc, GS);
    float *hdbr = malloc(n * 4);
    C->gated_residual_bwd(hdbr, dg0 + 2 * Cc, dxx, gate + Cc, br, B, T, Cc, GS);
    float *hx = down(g_x, n), *hb = down(g_dbr, n), *hg = down(g_dg, B * GS);
    // one multiply-add per element (contracted to an FMA or not): half an ulp apart at most
    CHECK(near("gated fwd", hx, x, n, 2e-7, 2 * U24) && same_bits(hb, hdbr, n), "gated_residual_fwd, dbranch");
    // T = 33 float additions in the same order; an FMA on one side only changes each by at most one rounding
    CHECK(near("gated dgate", hg, dg0, B * GS, 1e-5, 4 * U24), "gated_residual_bwd dgate (accumulates, tokens in order)");
    gfree(g_x); gfree(g_gate); gfree(g_br); gfree(g_dxx); gfree(g_dg); gfree(g_dbr);
    free(x); free(gate); free(br); free(dxx); free(dg0); free(hdbr); free(hx); free(hb); free(hg);
}

typedef void (*PatchFn)(float *, const float *, int, int, int, int, int);

static void test_patches(void) {
    static const int cfg[][4] = {{1, 28, 28, 4}, {4, 32, 32, 2}, {3, 12, 8, 4}, {2, 16, 16, 8}};   // C, H, W, p
    int ok = 1, inverse = 1;
    for (int k = 0; k < 4; k++) {
        int B = 2, Cc = cfg[k][0], H = cfg[k][1], W = cfg[k][2], p = cfg[k][3];
        size_t n = (size_t)B * Cc * H * W;   // tokens hold every pixel once (H, W divisible by p)
        PatchFn gf[4] = {G->patchify, G->patchify_bwd, G->unpatchify, G->unpatchify_bwd};
        PatchFn cf[4] = {C->patchify, C->patchify_bwd, C->unpatchify, C->unpatchify_bwd};
        PatchFn ginv[4] = {G->patchify_bwd, G->patchify, G->unpatchify_bwd, G->unpatchify};
        for (int f = 0; f < 4; f++) {
            float *in = hrand(n, 1), *g_in = up(in, n), *g_out = poisoned(n), *g_back = poisoned(n), *want = malloc(n * 4);
            gf[f](g_out, g_in, B, Cc, H, W, p);
            cf[f](want, in, B, Cc, H, W, p);
            ginv[f](g_back, g_out, B, Cc, H, W, p);
            float *got = down(g_out, n), *back = down(g_back, n);
            ok &= same_bits(got, want, n);
            inverse &= same_bits(back, in, n);
            gfree(g_in); gfree(g_out); gfree(g_back);
            free(in); free(want); free(got); free(back);
        }
    }
    CHECK(ok, "patchify, unpatchify and their backwards: exactly the CPU's");
    CHECK(inverse, "each is the exact inverse of its backward");
}

static void test_embeddings(void) {
    enum { B = 9, Cc = 70, ROWS = 5 };
    float t[B] = {0, 0.001f, 0.25f, 0.5f, 0.999f, 1, 250, 998, 999};
    float *g_t = up(t, B), *g_out = poisoned(B * 256), *hout = malloc(B * 256 * 4);
    G->timestep_embed(g_out, g_t, B);
    C->timestep_embed(hout, t, B);
    float *gout = down(g_out, B * 256);
    // the same float frequencies and products, then double cos/sin (CUDA's within 2 ulp of libm's) rounded to float
    CHECK(near("timestep_embed", gout, hout, B * 256, 1e-7, U24), "timestep_embed (cos half first), t up to 999");
    float *table = hrand(ROWS * Cc, 1), *dout = hrand(B * Cc, 1), *dt0 = hrand(ROWS * Cc, 1);
    int idx[B] = {0, 4, 4, 2, 0, 4, 1, 3, 4};
    float *g_table = up(table, ROWS * Cc), *g_dout = up(dout, B * Cc), *g_dt = up(dt0, ROWS * Cc), *g_e = poisoned(B * Cc);
    int *g_idx = G->alloc(sizeof idx);
    G->upload(g_idx, idx, sizeof idx);
    G->embed_fwd(g_e, g_table, g_idx, B, Cc);
    G->embed_bwd(g_dt, g_dout, g_idx, B, Cc);
    float *he = malloc(B * Cc * 4);
    C->embed_fwd(he, table, idx, B, Cc);
    C->embed_bwd(dt0, dout, idx, B, Cc);
    float *ge = down(g_e, B * Cc), *gdt = down(g_dt, ROWS * Cc);
    CHECK(same_bits(ge, he, B * Cc), "embed_fwd (exact)");
    CHECK(same_bits(gdt, dt0, ROWS * Cc), "embed_bwd accumulates repeated rows in the CPU's order (bit-identical)");
    gfree(g_t); gfree(g_out); gfree(g_table); gfree(g_dout); gfree(g_dt); gfree(g_e); G->free(g_idx);
    free(hout); free(gout); free(table); free(dout); free(dt0); free(he); free(ge); free(gdt);
}

// ---------------------------------------------------------------- attention

// The CPU fp32 attention is the reference. Forward is checked element by element against a bound derived from the
// GPU's input rounding u (0 strict, 2^-10 TF32, 2^-8 bf16): the scores' absolute error in row i is at most
// E_i = (2u + u^2 + (hd + 8) u24) sc max_j sum_d |q_id k_jd|, so each probability is off by a factor within
// exp(+-2 E_i), and out_id = sum_j p_ij v_jd by at most sum_j p_ij |v_jd| ((e^{2E_i} - 1)(1 + 2u) + 2u + u^2 +
// (T + 8) u24), doubled for the CPU's own fp32 rounding. The log-sum-exp moves by at most E_i (+ rounding).
// Backward has three product stages: checked normwise, max|error| <= 4 (e^{2E} - 1 + 2u + (T + 8) u24) max|dqkv|
// with E the largest E_i (a factor 4 for the chain of products and the softmax gradient's cancellation).
static int check_attention(int mode, int B, int T, int Cc, int NH, float qk_scale) {
    int hd = Cc / NH;
    size_t nq = (size_t)B * T * 3 * Cc, no = (size_t)B * T * Cc, ns = (size_t)B * NH * T;
    float *qkv = hrand(nq, 1), *dout = hrand(no, 1);
    for (size_t i = 0; i < nq; i++) if ((i % (3 * Cc)) < (size_t)2 * Cc) qkv[i] *= qk_scale;
    // `saved` is each backend's own; its last B*NH*T floats are the per-row log-sum-exp (ops.h)
    size_t cs = C->attention_saved_floats(B, T, Cc, NH);
    float *hout = malloc(no * 4), *hsaved = malloc(cs * 4), *hdq = malloc(nq * 4), *hlse = hsaved + (cs - ns);
    C->attention_fwd(hout, hsaved, qkv, B, T, Cc, NH);
    C->attention_bwd(hdq, dout, qkv, hout, hsaved, B, T, Cc, NH);
    const Ops *o = mode == MODE_BF16 ? G16 : G;
    size_t gs = o->attention_saved_floats(B, T, Cc, NH);
    if (!strcmp(o->device, "cuda")) CHECK(gs == ns, "the CUDA attention keeps B*NH*T floats (the log-sum-exp alone)");
    float *g_qkv = up(qkv, nq), *g_dout = up(dout, no), *g_out = poisoned(no), *g_saved = poisoned(gs), *g_dq = poisoned(nq);
    int old = ops_cuda_set_tf32(mode == MODE_TF32);
    o->attention_fwd(g_out, g_saved, g_qkv, B, T, Cc, NH);
    o->attention_bwd(g_dq, g_dout, g_qkv, g_out, g_saved, B, T, Cc, NH);
    float *gout = down(g_out, no), *glse = down(g_saved + (gs - ns), ns), *gdq = down(g_dq, nq);
    o->attention_bwd(g_dq, g_dout, g_qkv, g_out, g_saved, B, T, Cc, NH);   // determinism: a second call
    float *gdq2 = down(g_dq, nq);
    ops_cuda_set_tf32(old);
    double u = mode == MODE_TF32 ? U_TF32 : mode == MODE_BF16 ? U8 : 0, sc = 1.0 / sqrt((double)hd), Emax = 0;
    double worst_out = 0, worst_lse = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * 3 * Cc + h * hd;
                double qk = 0, s[1024], mx = -INFINITY, z = 0;
                for (int j = 0; j < T; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * 3 * Cc + Cc + h * hd;
                    double a = 0, aa = 0;
                    for (int d = 0; d < hd; d++) { a += (double)q[d] * k[d]; aa += fabs((double)q[d] * k[d]); }
                    s[j] = sc * a;
                    qk = fmax(qk, sc * aa);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < T; j++) z += exp(s[j] - mx);
                double E = (2 * u + u * u + (hd + 8) * U24) * qk, f = expm1(2 * E);
                Emax = fmax(Emax, E);
                size_t li = ((size_t)b * NH + h) * T + i;
                worst_lse = fmax(worst_lse, fabs(glse[li] - hlse[li]) / (2 * E + 4 * U24 * fabs(hlse[li]) + 1e-30));
                for (int d = 0; d < hd; d++) {
                    double pv = 0;
                    for (int j = 0; j < T; j++) pv += exp(s[j] - mx) / z * fabs(qkv[((size_t)b * T + j) * 3 * Cc + 2 * Cc + h * hd + d]);
                    size_t oi = ((size_t)b * T + i) * Cc + h * hd + d;
                    double bound = 2 * pv * (f * (1 + 2 * u) + 2 * u + u * u + (T + 8) * U24) + 1e-30;
                    double r = fabs((double)gout[oi] - hout[oi]) / bound;
                    if (!(r <= worst_out)) worst_out = r;
                }
            }
    double bwd = normwise(gdq, hdq, nq), bwd_bound = 4 * (expm1(2 * Emax) + 2 * u + (T + 8) * U24);
    int ok = worst_out <= 1 && worst_lse <= 1 && bwd <= bwd_bound;
    if (!ok || getenv("SHOW"))
        fprintf(stderr, "  attention mode %d B %d T %d C %d NH %d: out error/bound %.3g, lse %.3g, dqkv normwise %.3g "
                "(bound %.3g)\n", mode, B, T, Cc, NH, worst_out, worst_lse, bwd, bwd_bound);
    CHECK(same_bits(gdq, gdq2, nq), "attention backward is deterministic (mode %d, T %d)", mode, T);
    gfree(g_qkv); gfree(g_dout); gfree(g_out); gfree(g_saved); gfree(g_dq);
    free(qkv); free(dout); free(hout); free(hsaved); free(hdq); free(gout); free(glse); free(gdq); free(gdq2);
    return ok;
}

static void test_attention(void) {
    static const int shapes[][4] = {{3, 17, 48, 3}, {2, 64, 128, 2}, {2, 100, 144, 2}, {1, 256, 128, 1}};  // B T C NH
    static const char *names[] = {"strict fp32", "TF32", "bf16"};
    for (int mode = 0; mode < 3; mode++) {
        int ok = 1;
        for (int s = 0; s < 4; s++) ok &= check_attention(mode, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], 1.0f);
        ok &= check_attention(mode, 2, 40, 64, 2, 3.0f);   // peaked softmax rows
        CHECK(ok, "%s attention (hd 16, 64, 72, 128; T 17 to 256) within the derived bounds", names[mode]);
    }
}

// ---------------------------------------------------------------- element-wise and objectives

static void test_elementwise(void) {
    enum { N = 5000, R = 50, Cc = 100 };
    float *y = hrand(N, 1), *x = hrand(N, 1), *s = hrand(Cc, 2);
    float *g_y = up(y, N), *g_x = up(x, N), *g_s = up(s, Cc);
    G->axpy(g_y, 0.37f, g_x, N); C->axpy(y, 0.37f, x, N);
    G->scale(g_y, -1.7f, N); C->scale(y, -1.7f, N);
    G->scale_cols(g_y, g_s, R, Cc); C->scale_cols(y, s, R, Cc);
    float *gy = down(g_y, N);
    CHECK(near("axpy/scale/scale_cols", gy, y, N, 1e-7, 2 * U24), "axpy, scale, scale_cols");
    // copy_rows: a strided gather with a zeroed tail, and an overlapping in-place compaction
    float *a = hrand(6 * 40, 1), *g_a = up(a, 6 * 40), *g_c = poisoned(6 * 32), *hc = malloc(6 * 32 * 4);
    G->copy_rows(g_c, 32, g_a, 40, 6, 25, 1); C->copy_rows(hc, 32, a, 40, 6, 25, 1);
    float *gc = down(g_c, 6 * 32);
    CHECK(same_bits(gc, hc, 6 * 32), "copy_rows with a zeroed tail");
    G->copy_rows(g_a, 30, g_a, 40, 6, 30, 0); C->copy_rows(a, 30, a, 40, 6, 30, 0);
    float *ga = down(g_a, 6 * 40);
    CHECK(same_bits(ga, a, 6 * 40), "copy_rows compacting in place (overlapping rows)");
    // affine_rows: y1 aliasing x, and y2; sub_rows with strides
    enum { B = 5, n = 300, XS = 320 };
    double coef[4 * B];
    for (int i = 0; i < 4 * B; i++) coef[i] = 2 * rng_uniform(&g_rng) - 1;
    float *xx = hrand(B * XS, 1), *ee = hrand(B * XS, 1), *y1 = malloc(B * n * 4), *y2 = malloc(B * n * 4);
    double *g_coef = G->alloc(sizeof coef);
    G->upload(g_coef, coef, sizeof coef);
    float *g_xx = up(xx, B * XS), *g_ee = up(ee, B * XS), *g_y1 = poisoned(B * n), *g_y2 = poisoned(B * n);
    G->affine_rows(g_y1, g_y2, g_xx, g_ee, g_coef, B, n, XS, XS);
    C->affine_rows(y1, y2, xx, ee, coef, B, n, XS, XS);
    float *gy1 = down(g_y1, B * n), *gy2 = down(g_y2, B * n);
    CHECK(same_bits(gy1, y1, B * n) && same_bits(gy2, y2, B * n), "affine_rows (double coefficients, exact)");
    float *sq = hrand(B * n, 1), *g_sq = up(sq, B * n);
    G->affine_rows(g_sq, NULL, g_sq, g_ee, g_coef, B, n, n, XS);
    C->affine_rows(sq, NULL, sq, ee, coef, B, n, n, XS);
    float *gsq = down(g_sq, B * n);
    CHECK(same_bits(gsq, sq, B * n), "affine_rows with y1 = x");
    float *sub = malloc(B * n * 4), *g_sub = poisoned(B * n);
    G->sub_rows(g_sub, g_xx, g_ee, B, n, XS, XS);
    C->sub_rows(sub, xx, ee, B, n, XS, XS);
    float *gsub = down(g_sub, B * n);
    CHECK(same_bits(gsub, sub, B * n), "sub_rows (exact)");
    gfree(g_y); gfree(g_x); gfree(g_s); gfree(g_a); gfree(g_c); G->free(g_coef); gfree(g_xx); gfree(g_ee);
    gfree(g_y1); gfree(g_y2); gfree(g_sq); gfree(g_sub);
    free(y); free(x); free(s); free(gy); free(a); free(hc); free(gc); free(ga); free(xx); free(ee); free(y1); free(y2);
    free(gy1); free(gy2); free(sq); free(gsq); free(sub); free(gsub);
}

static void test_objectives(void) {
    enum { B = 6, n = 784, OS = 1568, ROWS = 49, DIM = 16 };
    float *out = hrand(B * OS, 1), *tg = hrand(B * n, 1), *grad = malloc(B * OS * 4);
    double loss[B], gloss[B];
    float *g_out = up(out, B * OS), *g_tg = up(tg, B * n), *g_grad = poisoned(B * OS);
    double *g_loss = G->alloc(sizeof loss);
    G->sq_err_rows(g_loss, g_grad, g_out, g_tg, 0.125, B, n, OS);
    C->sq_err_rows(loss, grad, out, tg, 0.125, B, n, OS);
    G->download(gloss, g_loss, sizeof gloss);
    float *gg = down(g_grad, B * OS);
    int ok = 1;
    for (int b = 0; b < B; b++) ok &= fabs(gloss[b] - loss[b]) <= 1e-12 * loss[b];
    CHECK(ok, "sq_err_rows: the per-row sums in double");
    CHECK(same_bits(gg, grad, B * OS), "sq_err_rows: the gradient (and its zeroed learned-sigma tail) exactly");
    float *r = hrand(B * ROWS * DIM, 1), *g_r = up(r, B * ROWS * DIM);
    double w[DIM], g[B];
    for (int i = 0; i < DIM; i++) w[i] = i < 5 ? 1 : 0.1;
    for (int b = 0; b < B; b++) g[b] = 0.5 + b;
    double *g_w = G->alloc(sizeof w), *g_g = G->alloc(sizeof g);
    G->upload(g_w, w, sizeof w);
    G->upload(g_g, g, sizeof g);
    G->weighted_sq_rows(g_loss, g_r, g_w, g_g, B, ROWS, DIM);
    C->weighted_sq_rows(loss, r, w, g, B, ROWS, DIM);
    G->download(gloss, g_loss, sizeof gloss);
    float *gr = down(g_r, B * ROWS * DIM);
    ok = 1;
    for (int b = 0; b < B; b++) ok &= fabs(gloss[b] - loss[b]) <= 1e-12 * loss[b];
    CHECK(ok && same_bits(gr, r, B * ROWS * DIM), "weighted_sq_rows: loss in double, gradient exactly");
    gfree(g_out); gfree(g_tg); gfree(g_grad); G->free(g_loss); gfree(g_r); G->free(g_w); G->free(g_g);
    free(out); free(tg); free(grad); free(gg); free(r); free(gr);
}

static void test_optimiser(void) {
    enum { N = 3001 };
    float *p = hrand(N, 1), *g = hrand(N, 0.01f), *m = hrand(N, 0.01f), *v = hrand(N, 1e-4f), *e = hrand(N, 1);
    for (int i = 0; i < N; i++) v[i] = fabsf(v[i]);
    float *g_p = up(p, N), *g_g = up(g, N), *g_m = up(m, N), *g_v = up(v, N), *g_e = up(e, N);
    G->adamw(g_p, g_g, g_m, g_v, N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.19f, 0.002f);
    C->adamw(p, g, m, v, N, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.19f, 0.002f);
    G->ema(g_e, g_p, N, 0.9f);
    C->ema(e, p, N, 0.9f);
    float *hp = down(g_p, N), *hm = down(g_m, N), *hv = down(g_v, N), *he = down(g_e, N);
    // the same float formula; contraction to FMA may differ by an ulp or two
    CHECK(near("adamw p", hp, p, N, 1e-7, 4 * U24) && near("adamw m", hm, m, N, 1e-9, 2 * U24) &&
          near("adamw v", hv, v, N, 1e-12, 2 * U24), "adamw");
    CHECK(near("ema", he, e, N, 1e-7, 4 * U24), "ema");
    // sumsq: double, fixed chunks; deterministic
    enum { S = 300001 };
    float *x = hrand(S, 1), *g_x = up(x, S);
    double a = G->sumsq(g_x, S), b = G->sumsq(g_x, S), c = C->sumsq(x, S);
    CHECK(a == b && fabs(a - c) <= 1e-12 * c, "sumsq: %.17g (twice the same) vs CPU %.17g", a, c);
    gfree(g_p); gfree(g_g); gfree(g_m); gfree(g_v); gfree(g_e); gfree(g_x);
    free(p); free(g); free(m); free(v); free(e); free(hp); free(hm); free(hv); free(he); free(x);
}

int main(void) {
    C = &ops_cpu;
    const char *err, *dev = getenv("DDM_TEST_DEVICE");
    // DDM_TEST_DEVICE=cpu runs every check with the CPU tables in the GPU's place (the bf16 one where the CPU has
    // AVX512_BF16): a self-test of this file's references and bounds on a machine without a GPU
    G = ops_select(dev ? dev : "cuda", "fp32", &err);
    if (!G) {
        printf("test_cuda_ops: skipped: no GPU (%s)\n", err);
        return 0;
    }
    G16 = ops_select(dev ? dev : "cuda", "bf16", &err);
    if (!G16 && dev) G16 = G;
    CHECK(G16 && !strcmp(G16->precision, dev && G16 == G ? "fp32" : "bf16"), "%s tables at fp32 and bf16", G->device);
    rng_init(&g_rng, 2025, 14);
    int tf32 = ops_cuda_set_tf32(0);   // strict fp32 unless a test turns TF32 on for itself
    test_memory();
    test_gemm();
    test_gemm_fp32_syrk();
    test_bias();
    test_layernorm();
    test_activations();
    test_gated();
    test_patches();
    test_embeddings();
    test_attention();
    test_elementwise();
    test_objectives();
    test_optimiser();
    ops_cuda_set_tf32(tf32);
    TEST_MAIN_END();
}
