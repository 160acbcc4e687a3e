// The denoise objective (the l-DAE deconstruction trajectory, SPEC §1.2; src/loss/objective.h): for every
// meaningful (noise schedule, tokenizer, target, output space, loss weighting) on a tiny example, x_t, the
// target and the loss against a float64 implementation written from the definitions (no shared code), and
// the loss gradient against float64 central differences of it; meaningless combinations are refused; the
// shorthands are exact: denoise(ddpm_linear, pixel, noise) = ddpm and denoise(sigma_linear, pca, image, image,
// ldae) = ldae bit for bit; t sampling and the single noise level.
#include <string.h>
#include "common.h"
#include "loss/objective.h"
#include "rng.h"
#include "test.h"
#include "tok/pca.h"

enum { C = 1, H = 4, W = 6, P = 2, D = P * P * C, DK = 2, B = 3, T = (H / P) * (W / P), N = C * H * W };

static float *random_images(int n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 0);
    float *x = xmalloc((size_t)n * N * sizeof(float));
    for (long i = 0; i < (long)n * N; i++) x[i] = (float)(0.4 * rng_normal(&r) + 0.1 * (i % 3));
    return x;
}

// Pixel index of element e (c, i, j order) of PCA patch k.
static int pix(int k, int e) {
    int c = e / (P * P), i = (e / P) % P, j = e % P, gw = W / P;
    return (c * H + (k / gw) * P + i) * W + (k % gw) * P + j;
}

static double ab_ref(int t) {   // DDPM alphas_cumprod from its definition, betas linear 1e-4 .. 0.02
    double ab = 1;
    for (int i = 0; i <= t; i++) ab *= 1 - (1e-4 + (0.02 - 1e-4) * i / 999.0);
    return ab;
}

static void gs_ref(int noise, double t, double *g, double *s) {
    if (noise == NOISE_DDPM_LINEAR) { double ab = ab_ref((int)t); *g = sqrt(ab); *s = sqrt(1 - ab); }
    else if (noise == NOISE_GAMMA2_LINEAR) { *g = sqrt(1 - t / 999); *s = sqrt(t / 999); }
    else { *g = 1; *s = sqrt(2.0) * t / 999; }
}

static double wscale(const Pca *p, int c) {   // whitening scale of component c, as the tokenizer's
    if (!p->whitened) return 1;
    double fl = fmax(1e-12 * p->eigenvalues[0], 1e-30);
    return sqrt(fmax(p->eigenvalues[c], fl));
}

// x_t and the target of one sample in float64 from the definitions.
static void ref_pair(const DenoiseSpec *s, const Pca *p, const float *x, const float *eps, double t, double *xt, double *tg) {
    double g, sg;
    gs_ref(s->noise, t, &g, &sg);
    if (s->tokenizer == TOK_PIXEL) {
        for (int i = 0; i < N; i++) {
            xt[i] = g * x[i] + sg * eps[i];
            tg[i] = s->target == TARGET_NOISE ? eps[i] : x[i];
        }
        return;
    }
    for (int k = 0; k < T; k++) {
        double z0[DK];
        for (int c = 0; c < DK; c++) {
            double a = 0;
            for (int e = 0; e < D; e++) a += (double)p->basis[c * D + e] * (x[pix(k, e)] - p->mean[e]);
            z0[c] = a / wscale(p, c);
        }
        for (int e = 0; e < D; e++) {
            double vx = p->mean[e], vz = p->mean[e], ve = 0;
            for (int c = 0; c < DK; c++) {
                double ec = eps[k * DK + c], vce = p->basis[c * D + e] * wscale(p, c);
                vx += vce * (g * z0[c] + sg * ec);
                vz += vce * z0[c];
                ve += vce * ec;
            }
            xt[pix(k, e)] = vx;
            tg[pix(k, e)] = s->target == TARGET_NOISE ? ve : s->target == TARGET_LATENT ? vz : x[pix(k, e)];
        }
    }
}

typedef struct { const DenoiseSpec *s; const Pca *p; const double *tg; const float *t; int Cout; } LossCtx;

// The loss in float64 from its definition; out [B, Cout, H, W] (double).
static double ref_loss(const LossCtx *L, const double *out) {
    const DenoiseSpec *s = L->s;
    const Pca *p = L->p;
    double total = 0;
    for (int b = 0; b < B; b++) {
        const double *o = out + (size_t)b * L->Cout * H * W, *tg = L->tg + (size_t)b * N;
        double sum = 0;
        if (s->output == OUTPUT_IMAGE && s->weight == WEIGHT_MSE) {
            for (int i = 0; i < N; i++) sum += (o[i] - tg[i]) * (o[i] - tg[i]);
            total += sum / N;
            continue;
        }
        for (int k = 0; k < T; k++)
            for (int c = 0; c < D; c++) {
                double r = 0;
                for (int e = 0; e < D; e++) r += (double)p->basis[c * D + e] * (tg[pix(k, e)] - o[pix(k, e)]);
                if (s->output == OUTPUT_LATENT) { if (c < DK) sum += r * r / (wscale(p, c) * wscale(p, c)); }
                else sum += (c < DK ? 1.0 : 0.1) * r * r;
            }
        if (s->output == OUTPUT_LATENT) total += sum / (T * DK);
        else {
            double g, sg;
            gs_ref(s->noise, L->t[b], &g, &sg);
            total += sum / (1 + sg * sg) / (T * D);
        }
    }
    return total / B;
}

static const char *nm[5][3] = {{"ddpm_linear", "gamma2_linear", "sigma_linear"}, {"pixel", "pca"},
                               {"noise", "latent", "image"}, {"image", "latent"}, {"mse", "ldae"}};

static void check_combo(const DenoiseSpec *s, const Pca *p, const char *what, int Cout) {
    char name[160];
    snprintf(name, sizeof name, "%s %s %s %s %s (%s, Cout %d)", nm[0][s->noise], nm[1][s->tokenizer], nm[2][s->target],
             nm[3][s->output], nm[4][s->weight], what, Cout);
    Objective o;
    objective_init(&o, OBJ_DENOISE);
    const char *err = objective_set_denoise(&o, nm[0][s->noise], nm[1][s->tokenizer], nm[2][s->target],
                                            nm[3][s->output], nm[4][s->weight]);
    CHECK(!err, "%s: accepted (%s)", name, err ? err : "");
    if (err) return;
    if (s->tokenizer == TOK_PCA) objective_set_pca(&o, p, C, H, W, "test");
    float *x = random_images(B, 11), *eps = random_images(B, 12), *xt = xmalloc(sizeof(float) * B * N),
          *tg = xmalloc(sizeof(float) * B * N);
    float t[B] = {0, 10, 600};
    objective_make_pair(&o, xt, tg, x, eps, t, B, N);
    double rxt[B * N], rtg[B * N], worst_x = 0, worst_t = 0;
    for (int b = 0; b < B; b++) ref_pair(s, p, x + b * N, eps + b * N, t[b], rxt + b * N, rtg + b * N);
    for (int i = 0; i < B * N; i++) {
        worst_x = fmax(worst_x, fabs(xt[i] - rxt[i]));
        worst_t = fmax(worst_t, fabs(tg[i] - rtg[i]));
    }
    CHECK(worst_x < 2e-5 && worst_t < 2e-5, "%s: x_t and target = the float64 definitions (worst %.3g, %.3g)", name,
          worst_x, worst_t);
    // the loss and its gradient
    long no = (long)B * Cout * H * W;
    float *out = random_images(2 * B, 13), *g = xmalloc(no * sizeof(float));
    double *od = xmalloc(no * sizeof(double));
    for (long i = 0; i < no; i++) od[i] = out[i];
    float Lc = objective_loss(&o, out, tg, t, B, C, Cout, H * W, g);
    LossCtx ctx = {s, p, rtg, t, Cout};
    double Lr = ref_loss(&ctx, od);
    CHECK(fabs(Lc - Lr) <= 1e-5 * fabs(Lr) + 1e-9, "%s: loss %.9g = float64 %.9g", name, Lc, Lr);
    double h = 1e-3, worst = 0, gmax = 0;
    for (long i = 0; i < no; i++) gmax = fmax(gmax, fabs(g[i]));
    for (long i = 0; i < no; i++) {
        double o0 = od[i];
        od[i] = o0 + h; double lp = ref_loss(&ctx, od);
        od[i] = o0 - h; double lm = ref_loss(&ctx, od);
        od[i] = o0;
        worst = fmax(worst, fabs((lp - lm) / (2 * h) - g[i]));
    }
    CHECK(gmax > 0 && worst <= 1e-4 * gmax, "%s: d loss / d out = float64 central differences (worst %.3g, max |g| %.3g)",
          name, worst, gmax);
    free(x); free(eps); free(xt); free(tg); free(out); free(g); free(od);
}

static void check_all(const Pca *p, const char *what) {
    int accepted = 0, refused = 0;
    for (int nz = 0; nz < 3; nz++)
        for (int tk = 0; tk < 2; tk++)
            for (int tg = 0; tg < 3; tg++)
                for (int ou = 0; ou < 2; ou++)
                    for (int wt = 0; wt < 2; wt++) {
                        Objective o;
                        objective_init(&o, OBJ_DENOISE);
                        const char *err = objective_set_denoise(&o, nm[0][nz], nm[1][tk], nm[2][tg], nm[3][ou], nm[4][wt]);
                        int meaningful = tk == TOK_PCA ? !(ou == OUTPUT_LATENT && (tg == TARGET_IMAGE || wt == WEIGHT_LDAE))
                                                       : tg != TARGET_LATENT && ou == OUTPUT_IMAGE && wt == WEIGHT_MSE;
                        CHECK((err == NULL) == meaningful, "%s %s %s %s %s: %s", nm[0][nz], nm[1][tk], nm[2][tg], nm[3][ou],
                              nm[4][wt], err ? err : "accepted");
                        if (err) { refused++; continue; }
                        accepted++;
                        DenoiseSpec s = {nz, tk, tg, ou, wt};
                        check_combo(&s, p, what, C);
                    }
    CHECK(accepted == 3 * (2 + 8) && refused == 72 - accepted, "%d combinations accepted, %d refused", accepted, refused);
    DenoiseSpec s = {NOISE_GAMMA2_LINEAR, TOK_PCA, TARGET_LATENT, OUTPUT_LATENT, WEIGHT_MSE};
    check_combo(&s, p, what, 2 * C);   // learned-sigma channels
}

// Equal bit for bit: make_pair and the loss (with its gradient) of two objectives.
static int same(const Objective *a, const Objective *b, const float *t) {
    float *x = random_images(B, 21), *eps = random_images(B, 22), *out = random_images(B, 23);
    float xa[B * N], xb[B * N], ta[B * N], tb[B * N], ga[B * N], gb[B * N];
    objective_make_pair(a, xa, ta, x, eps, t, B, N);
    objective_make_pair(b, xb, tb, x, eps, t, B, N);
    float La = objective_loss(a, out, ta, t, B, C, C, H * W, ga), Lb = objective_loss(b, out, tb, t, B, C, C, H * W, gb);
    int ok = !memcmp(xa, xb, sizeof xa) && !memcmp(ta, tb, sizeof ta) && !memcmp(ga, gb, sizeof ga) &&
             !memcmp(&La, &Lb, sizeof La);
    free(x); free(eps); free(out);
    return ok;
}

static void test_shorthands(const Pca *p) {
    float t[B] = {3, 500, 999};
    Objective a, b;
    objective_init(&a, OBJ_DDPM);
    objective_init(&b, OBJ_DENOISE);
    CHECK(!objective_set_denoise(&b, "", "", "", "", "") && same(&a, &b, t), "denoise defaults = ddpm, bit for bit");
    objective_init(&a, OBJ_LDAE);
    objective_set_pca(&a, p, C, H, W, "test");
    objective_init(&b, OBJ_DENOISE);
    CHECK(!objective_set_denoise(&b, "sigma_linear", "pca", "image", "image", "ldae"), "the l-DAE row is accepted");
    objective_set_pca(&b, p, C, H, W, "test");
    CHECK(same(&a, &b, t), "denoise sigma_linear pca image image ldae = ldae, bit for bit");
    CHECK(objective_uses_pca(&a) && objective_uses_pca(&b), "both need the tokenizer");
    objective_init(&b, OBJ_DENOISE);
    const char *e = objective_set_denoise(&b, "cosine", "", "", "", "");
    CHECK(e && strstr(e, "--noise 'cosine': expected ddpm_linear, gamma2_linear or sigma_linear"), "unknown schedule: %s", e ? e : "");
    e = objective_set_denoise(&b, "", "vae", "", "", "");
    CHECK(e && strstr(e, "--tokenizer 'vae': expected pixel or pca"), "unknown tokenizer: %s", e ? e : "");
    CHECK(objective_parse("denoise") == OBJ_DENOISE && !strcmp(objective_name(OBJ_DENOISE), "denoise"), "name denoise");
}

// Both objectives on integer levels (denoise and its shorthand ldae) draw t the same way.
static void test_sample_t(void) {
    Objective o;
    Rng r;
    rng_init(&r, 1, 2);
    float t[2000];
    const ObjectiveKind kinds[] = {OBJ_DENOISE, OBJ_LDAE};
    for (int k = 0; k < 2; k++) {
        objective_init(&o, kinds[k]);
        objective_sample_t(&o, &r, t, 2000);
        int ok = 1, lo = 0, hi = 0;
        for (int i = 0; i < 2000; i++) {
            ok &= t[i] >= 0 && t[i] <= 999 && t[i] == floorf(t[i]);
            lo |= t[i] < 100; hi |= t[i] > 899;
        }
        CHECK(ok && lo && hi, "%s t: integer levels spread over 0..999", objective_name(kinds[k]));
    }
    objective_init(&o, OBJ_DENOISE);
    int ok;
    o.single_t = 250;
    objective_sample_t(&o, &r, t, 2000);
    ok = 1;
    for (int i = 0; i < 2000; i++) ok &= t[i] == 250;
    CHECK(ok, "single noise level: every t = 250");
    CHECK(objective_t_error(OBJ_DENOISE, 10) == NULL && objective_t_error(OBJ_DENOISE, 10.5f) &&
              objective_t_error(OBJ_DENOISE, 1000) && !objective_t_error(OBJ_DENOISE, 999),
          "denoise t: integers 0..999");
    double g, s;
    objective_init(&o, OBJ_DENOISE);
    objective_set_denoise(&o, "gamma2_linear", "", "", "", "");
    denoise_gamma_sigma(&o, 999, &g, &s);
    CHECK(g == 0 && s == 1, "gamma2_linear: gamma 0, sigma 1 at t = 999");
    denoise_gamma_sigma(&o, 0, &g, &s);
    CHECK(g == 1 && s == 0, "gamma2_linear: gamma 1, sigma 0 at t = 0");
}

int main(void) {
    float *fit = random_images(60, 1);
    Pca *p = pca_fit(fit, 60, C, H, W, P, DK, 600, 1, 0, 2);
    Pca *pw = pca_fit(fit, 60, C, H, W, P, DK, 600, 1, 1, 2);
    check_all(p, "centred");
    check_all(pw, "whitened");
    test_shorthands(p);
    test_sample_t();
    pca_free(p);
    pca_free(pw);
    free(fit);
    TEST_MAIN_END();
}
