// Dispersive loss: finite-difference gradients, a naive reference written from the definitions,
// float vs double agreement, edge cases and the by-name public entry point.
#include "ddm.h"
#include "loss/dispersive.h"
#include "rng.h"
#include "test.h"
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const DispVariant ALL[4] = {DISP_INFONCE_L2, DISP_INFONCE_COS, DISP_HINGE, DISP_COVARIANCE};

// ---- naive reference, straight from SPEC §1.1, in long double -------------------------------------
static long double ref_norm(const double *x, int D) {
    long double s = 0;
    for (int a = 0; a < D; a++) s += (long double)x[a] * x[a];
    long double n = sqrtl(s);
    return n > 1e-12L ? n : 1e-12L;
}

// log( (1/n) sum exp(s_k) ), once directly and once with the max subtracted; the direct form is
// used when long double can hold every term, so both tricks-free and stable references get exercised.
static long double ref_log_mean_exp(const long double *s, int n) {
    long double m = -INFINITY, direct = 0, shifted = 0;
    for (int k = 0; k < n; k++) m = s[k] > m ? s[k] : m;
    for (int k = 0; k < n; k++) { direct += expl(s[k]); shifted += expl(s[k] - m); }
    if (m < 11000 && direct > 0 && isfinite(direct)) return logl(direct / n);
    return m + logl(shifted / n);
}

static double ref_loss(const double *z, int B, int D, DispVariant v, double tau, double eps) {
    if (B < 2) return 0;
    long double *s = calloc((size_t)B * B, sizeof(long double));
    long double out = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            const double *zi = z + (size_t)i * D, *zj = z + (size_t)j * D;
            long double d2 = 0, dot = 0;
            for (int a = 0; a < D; a++) {
                long double t = (long double)zi[a] - zj[a];
                d2 += t * t;
                dot += (long double)zi[a] * zj[a];
            }
            long double d = d2 / D;
            if (v == DISP_INFONCE_L2) s[i * B + j] = -d / tau;
            if (v == DISP_INFONCE_COS) s[i * B + j] = dot / (ref_norm(zi, D) * ref_norm(zj, D)) / tau;
            if (v == DISP_HINGE) { long double h = eps - d > 0 ? eps - d : 0; out += h * h / ((long double)B * B); }
        }
    if (v == DISP_INFONCE_L2 || v == DISP_INFONCE_COS) out = ref_log_mean_exp(s, B * B);
    if (v == DISP_COVARIANCE) {
        long double *V = calloc((size_t)B * D, sizeof(long double));
        for (int i = 0; i < B; i++) {
            long double n = ref_norm(z + (size_t)i * D, D);
            for (int a = 0; a < D; a++) V[i * D + a] = z[(size_t)i * D + a] / n;
        }
        for (int a = 0; a < D; a++) {
            long double m = 0;
            for (int i = 0; i < B; i++) m += V[i * D + a];
            for (int i = 0; i < B; i++) V[i * D + a] -= m / B;
        }
        for (int a = 0; a < D; a++)
            for (int b = 0; b < D; b++) {
                if (a == b) continue;
                long double c = 0;
                for (int i = 0; i < B; i++) c += V[i * D + a] * V[i * D + b];
                c /= (B - 1);
                out += c * c;
            }
        out /= D;
        free(V);
    }
    free(s);
    return (double)out;
}

// ---- helpers ---------------------------------------------------------------------------------------
static void fill_normal(double *x, long n, uint64_t seed, double scale) {
    Rng r; rng_init(&r, seed, 7);
    for (long k = 0; k < n; k++) x[k] = scale * rng_normal(&r);
}

static double rel_err(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

static double max_abs(const double *x, long n) {
    double m = 0;
    for (long k = 0; k < n; k++) m = fmax(m, fabs(x[k]));
    return m;
}

// ---- tests -----------------------------------------------------------------------------------------
static void test_names(void) {
    for (int k = 0; k < 4; k++)
        CHECK(dispersive_variant_parse(dispersive_variant_name(ALL[k])) == (int)ALL[k], "name round trip %d", k);
    CHECK(dispersive_variant_parse("infonce_l2") == DISP_INFONCE_L2, "parse infonce_l2");
    CHECK(dispersive_variant_parse("covariance") == DISP_COVARIANCE, "parse covariance");
    CHECK(dispersive_variant_parse("bogus") == -1, "unknown name -> -1");
    CHECK(dispersive_variant_parse("InfoNCE_L2") == -1, "names are case sensitive");
    CHECK(dispersive_variant_parse(NULL) == -1, "NULL name -> -1");
}

// Central differences in float64, h = 1e-6.
static void test_gradcheck(void) {
    const int shapes[][2] = {{2, 1}, {2, 4}, {3, 7}, {5, 4}, {5, 7}, {3, 1}, {4, 12}};
    const double params[][2] = {{1.0, 1.0}, {0.37, 2.5}, {2.0, 0.6}}; // (tau, eps)
    const double h = 1e-6;
    int nshape = sizeof shapes / sizeof shapes[0], nparam = sizeof params / sizeof params[0];
    for (int vi = 0; vi < 4; vi++)
        for (int si = 0; si < nshape; si++)
            for (int pi = 0; pi < nparam; pi++) {
                int B = shapes[si][0], D = shapes[si][1];
                double scale = 1.0 + 0.5 * pi;
                // eps relative to the mean d_ij = 2 scale^2, so hinge has active and inactive pairs
                double tau = params[pi][0], eps = params[pi][1] * 2 * scale * scale;
                long n = (long)B * D;
                double *z = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double));
                double *fd = malloc(n * sizeof(double));
                fill_normal(z, n, 100 + si * 10 + pi, scale);
                dispersive_loss_f64(z, B, D, ALL[vi], tau, eps, g);
                for (long k = 0; k < n; k++) {
                    double z0 = z[k];
                    z[k] = z0 + h; double lp = dispersive_loss_f64(z, B, D, ALL[vi], tau, eps, NULL);
                    z[k] = z0 - h; double lm = dispersive_loss_f64(z, B, D, ALL[vi], tau, eps, NULL);
                    z[k] = z0;
                    fd[k] = (lp - lm) / (2 * h);
                }
                // atol: the rounding floor of a central difference, ~ a few ulp(L) / (2h) ~ 1e-9.
                double gmax = max_abs(fd, n), worst = 0;
                for (long k = 0; k < n; k++)
                    worst = fmax(worst, fabs(g[k] - fd[k]) / (1e-6 * (fabs(fd[k]) + 0.1 * gmax) + 2e-9));
                CHECK(worst <= 1.0, "gradcheck %s B=%d D=%d tau=%g eps=%g: worst ratio %.3g (max |grad| %.3g)",
                      dispersive_variant_name(ALL[vi]), B, D, tau, eps, worst, gmax);
                free(z); free(g); free(fd);
            }
}

static void test_against_reference(void) {
    const int shapes[][2] = {{2, 3}, {3, 1}, {5, 7}, {8, 16}, {16, 5}};
    for (int vi = 0; vi < 4; vi++)
        for (int si = 0; si < 5; si++)
            for (int scaled = 0; scaled < 2; scaled++) {
                int B = shapes[si][0], D = shapes[si][1];
                double *z = malloc((size_t)B * D * sizeof(double));
                fill_normal(z, (long)B * D, 500 + si, scaled ? 100.0 : 1.0); // x100: d_ij ~ 2e4
                double tau = 0.5, eps = scaled ? 3e4 : 1.5;
                double got = dispersive_loss_f64(z, B, D, ALL[vi], tau, eps, NULL);
                double want = ref_loss(z, B, D, ALL[vi], tau, eps);
                CHECK(fabs(got - want) <= 1e-10 * fmax(1, fabs(want)), "reference %s B=%d D=%d scale=%s: %.17g vs %.17g",
                      dispersive_variant_name(ALL[vi]), B, D, scaled ? "100" : "1", got, want);
                CHECK(isfinite(got), "finite %s", dispersive_variant_name(ALL[vi]));
                free(z);
            }
    // Overflow: cosine with tau = 1e-3 has exp(1000) terms (inf in double, fine in long double).
    {
        int B = 6, D = 9;
        double z[54];
        fill_normal(z, 54, 77, 1.0);
        for (int a = 0; a < D; a++) z[1 * D + a] = z[0 * D + a] + 0.01 * z[2 * D + a]; // one close pair
        double got = dispersive_loss_f64(z, B, D, DISP_INFONCE_COS, 1e-3, 0, NULL);
        double want = ref_loss(z, B, D, DISP_INFONCE_COS, 1e-3, 0);
        CHECK(isfinite(got) && fabs(got - want) <= 1e-9 * fabs(want), "cos tau=1e-3: %.17g vs %.17g", got, want);
        float zf[54];
        for (int k = 0; k < 54; k++) zf[k] = (float)z[k];
        float gotf = dispersive_loss_f32(zf, B, D, DISP_INFONCE_COS, 1e-3f, 0, NULL);
        CHECK(isfinite(gotf) && rel_err(gotf, want) <= 1e-4, "cos tau=1e-3 f32: %.9g vs %.9g", gotf, want);
    }
    // Underflow: L2 with tau = 1e-5: every off-diagonal term but the close pair's underflows (exp(-1e5)).
    {
        int B = 5, D = 8;
        double z[40];
        fill_normal(z, 40, 78, 1.0);
        for (int a = 0; a < D; a++) z[3 * D + a] = z[4 * D + a] + 1e-3 * (a + 1); // d_34 = 2.55e-5
        double got = dispersive_loss_f64(z, B, D, DISP_INFONCE_L2, 1e-5, 0, NULL);
        double want = ref_loss(z, B, D, DISP_INFONCE_L2, 1e-5, 0);
        CHECK(fabs(got - want) <= 1e-10, "l2 tau=1e-6 underflow: %.17g vs %.17g", got, want);
        CHECK(got > -log(B) + 1e-3, "close pair visible: %.17g vs -log B %.17g", got, -log(B));
    }
}

static void compare_precisions(int B, int D, double tol, uint64_t seed, const char *what) {
    long n = (long)B * D;
    float *zf = malloc(n * sizeof(float)), *gf = malloc(n * sizeof(float)), *gd_as_f = malloc(n * sizeof(float));
    double *zd = malloc(n * sizeof(double)), *gd = malloc(n * sizeof(double));
    Rng r; rng_init(&r, seed, 1);
    rng_normal_fill(&r, zf, n);
    for (long k = 0; k < n; k++) zd[k] = zf[k];
    for (int vi = 0; vi < 4; vi++) {
        double tau = 0.5, eps = 2.5;
        float lf = dispersive_loss_f32(zf, B, D, ALL[vi], (float)tau, (float)eps, gf);
        double ld = dispersive_loss_f64(zd, B, D, ALL[vi], tau, eps, gd);
        CHECK(rel_err(lf, ld) <= tol, "%s %s f32 vs f64 loss: %.9g vs %.17g", what, dispersive_variant_name(ALL[vi]), lf, ld);
        for (long k = 0; k < n; k++) gd_as_f[k] = (float)gd[k];
        double gmax = max_abs(gd, n);
        CHECK(close_enough(gf, gd_as_f, n, tol * gmax, tol, "dz"), "%s %s f32 vs f64 gradient",
              what, dispersive_variant_name(ALL[vi]));
    }
    free(zf); free(gf); free(gd_as_f); free(zd); free(gd);
}

static void test_precisions(void) {
    compare_precisions(5, 7, 1e-5, 11, "small");
    compare_precisions(16, 300, 1e-5, 12, "B16");
    compare_precisions(64, 18816, 1e-4, 13, "medium"); // SiT-S/2-like block output at 32x32 latents
}

static void test_edge_cases(void) {
    // B = 1 (and 0): exactly 0, dz zeroed.
    for (int vi = 0; vi < 4; vi++) {
        float z[5] = {1, 2, 3, 4, 5}, dz[5] = {7, 7, 7, 7, 7};
        double zd[5] = {1, 2, 3, 4, 5}, dzd[5] = {7, 7, 7, 7, 7};
        CHECK(dispersive_loss_f32(z, 1, 5, ALL[vi], 0.5f, 1, dz) == 0.0f, "B=1 f32 loss");
        CHECK(dispersive_loss_f64(zd, 1, 5, ALL[vi], 0.5, 1, dzd) == 0.0, "B=1 f64 loss");
        int zero = 1;
        for (int k = 0; k < 5; k++) zero &= dz[k] == 0 && dzd[k] == 0;
        CHECK(zero, "B=1 dz zeroed (%s)", dispersive_variant_name(ALL[vi]));
        CHECK(ddm_dispersive_loss(z, 1, 5, dispersive_variant_name(ALL[vi]), 0.5f, 1, dz) == 0.0f, "B=1 by name");
        CHECK(dispersive_loss_f32(NULL, 0, 5, ALL[vi], 0.5f, 1, NULL) == 0.0f, "B=0");
    }
    // Identical samples with exactly representable values: InfoNCE-L2 is exactly 0, gradient ~0.
    {
        int B = 4, D = 6;
        float z[24], dz[24];
        double zd[24], dzd[24];
        for (int i = 0; i < B; i++)
            for (int a = 0; a < D; a++) zd[i * D + a] = z[i * D + a] = 0.5f * (a - 2);
        CHECK(dispersive_loss_f32(z, B, D, DISP_INFONCE_L2, 0.5f, 1, dz) == 0.0f, "identical f32 l2 == 0");
        CHECK(dispersive_loss_f64(zd, B, D, DISP_INFONCE_L2, 0.5, 1, dzd) == 0.0, "identical f64 l2 == 0");
        double m = 0;
        for (int k = 0; k < 24; k++) m = fmax(m, fmax(fabs(dz[k]), fabs(dzd[k])));
        CHECK(m < 1e-6, "identical: gradient %g", m);
        CHECK(fabs(dispersive_loss_f64(zd, B, D, DISP_INFONCE_COS, 0.5, 1, NULL) - 2.0) < 1e-14, "identical cos = 1/tau");
        CHECK(fabs(dispersive_loss_f64(zd, B, D, DISP_HINGE, 0.5, 1.5, NULL) - 2.25) < 1e-14, "identical hinge = eps^2");
        CHECK(fabs(dispersive_loss_f64(zd, B, D, DISP_COVARIANCE, 0.5, 1, NULL)) < 1e-14, "identical covariance = 0");
    }
    // Identical random samples: ~0 within rounding.
    {
        int B = 8, D = 500;
        float *z = malloc(B * D * sizeof(float));
        Rng r; rng_init(&r, 3, 3);
        rng_normal_fill(&r, z, D);
        for (int i = 1; i < B; i++) memcpy(z + i * D, z, D * sizeof(float));
        float l = dispersive_loss_f32(z, B, D, DISP_INFONCE_L2, 0.5f, 1, NULL);
        CHECK(fabs(l) < 1e-5 && l <= 0, "identical random f32 l2 ~ 0: %g", l);
        free(z);
    }
    // Well separated samples: InfoNCE-L2 -> -log B, hinge -> eps^2 / B.
    {
        int B = 6, D = 8;
        float z[48] = {0};
        for (int i = 0; i < B; i++) z[i * D + i] = 100;
        float l = dispersive_loss_f32(z, B, D, DISP_INFONCE_L2, 0.5f, 1, NULL);
        CHECK(fabs(l + log(B)) < 1e-6, "separated l2: %.9g vs -log B %.9g", l, -log(B));
        float hl = dispersive_loss_f32(z, B, D, DISP_HINGE, 0.5f, 2, NULL);
        CHECK(fabs(hl - 4.0 / B) < 1e-6, "separated hinge: %.9g vs eps^2/B", hl);
        float cl = dispersive_loss_f32(z, B, D, DISP_INFONCE_COS, 0.5f, 1, NULL);
        double want = log((B * exp(2.0) + B * (B - 1)) / (B * B)); // cos = 1 on the diagonal, 0 off it
        CHECK(fabs(cl - want) < 1e-6, "orthogonal cos: %.9g vs %.9g", cl, want);
    }
    // A zero row: no NaN anywhere (cosine / covariance normalise with max(||z||, 1e-12)).
    {
        int B = 3, D = 4;
        double z[12] = {1, 2, 3, 4, 0, 0, 0, 0, -1, 0, 2, 1}, dz[12];
        for (int vi = 0; vi < 4; vi++) {
            double l = dispersive_loss_f64(z, B, D, ALL[vi], 0.5, 1, dz);
            int fin = isfinite(l);
            for (int k = 0; k < 12; k++) fin &= isfinite(dz[k]);
            CHECK(fin, "zero row finite (%s)", dispersive_variant_name(ALL[vi]));
            CHECK(fabs(l - ref_loss(z, B, D, ALL[vi], 0.5, 1)) < 1e-12, "zero row reference (%s)", dispersive_variant_name(ALL[vi]));
        }
    }
}

static void test_by_name(void) {
    int B = 7, D = 33;
    float z[7 * 33], g1[7 * 33], g2[7 * 33];
    Rng r; rng_init(&r, 9, 9);
    rng_normal_fill(&r, z, B * D);
    for (int vi = 0; vi < 4; vi++) {
        float a = dispersive_loss_f32(z, B, D, ALL[vi], 0.7f, 1.3f, g1);
        float b = ddm_dispersive_loss(z, B, D, dispersive_variant_name(ALL[vi]), 0.7f, 1.3f, g2);
        CHECK(a == b && memcmp(g1, g2, sizeof g1) == 0, "by name == enum (%s)", dispersive_variant_name(ALL[vi]));
    }
}

static float g_z[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static void child_bad_name(void) { ddm_dispersive_loss(g_z, 2, 4, "infonce_l3", 0.5f, 1, NULL); }
static void child_bad_tau(void) { ddm_dispersive_loss(g_z, 2, 4, "infonce_cos", 0.0f, 1, NULL); }
static void child_hinge_tau0(void) { ddm_dispersive_loss(g_z, 2, 4, "hinge", 0.0f, 1, NULL); }

static void test_errors(void) {
    char msg[1024];
    int st = run_in_child(child_bad_name, msg, sizeof msg);
    CHECK(st == 1, "unknown variant exits 1 (got %d)", st);
    CHECK(strstr(msg, "ddm: error:") && strstr(msg, "infonce_l3") &&
          strstr(msg, "infonce_l2, infonce_cos, hinge, covariance") && strchr(msg, '\n') == msg + strlen(msg) - 1,
          "one-line message naming the bad and the valid variants: %s", msg);
    st = run_in_child(child_bad_tau, msg, sizeof msg);
    CHECK(st == 1 && strstr(msg, "tau"), "tau = 0 for infonce_cos exits 1 (got %d: %s)", st, msg);
    st = run_in_child(child_hinge_tau0, msg, sizeof msg);
    CHECK(st == 0, "hinge ignores tau (got %d: %s)", st, msg);
}

int main(void) {
    test_names();
    test_gradcheck();
    test_against_reference();
    test_precisions();
    test_edge_cases();
    test_by_name();
    test_errors();
    TEST_MAIN_END();
}
