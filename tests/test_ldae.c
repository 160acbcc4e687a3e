// The l-DAE objective (SPEC §1.2, src/loss/objective.h): the loss gradient w.r.t. the model output
// against float64 central differences of an independent float64 implementation of the loss, the loss
// value itself, x_t (t = 0: the PCA reconstruction of x; the noise lives in the PCA latent with
// sigma_t = sqrt(2) t / 999, whitened or not), lambda_t and the component weights w, t sampling, and the
// tokenizer embedded in a checkpoint read back.
#include <string.h>
#include <unistd.h>
#include "common.h"
#include "io/safetensors.h"
#include "loss/objective.h"
#include "rng.h"
#include "test.h"
#include "tok/pca.h"
#include "model/checkpoint.h"

enum { C = 2, H = 4, W = 6, P = 2, D = P * P * C, DK = 3, B = 3, T = (H / P) * (W / P), N = C * H * W };

static float *random_images(int n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 0);
    float *x = xmalloc((size_t)n * N * sizeof(float));
    for (long i = 0; i < (long)n * N; i++) x[i] = (float)(0.3 * rng_normal(&r) + 0.1 * (i % 5));
    return x;
}

// Patch t of image img [C, H, W] in (c, i, j) order, as doubles.
static void patch_of(const double *img, int t, double *v) {
    int py = t / (W / P), px = t % (W / P);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < P; i++)
            for (int j = 0; j < P; j++) v[(c * P + i) * P + j] = img[((size_t)c * H + py * P + i) * W + px * P + j];
}

// The l-DAE loss written out in float64 from its definition (no BLAS, no shared code):
// mean_b lambda_b sum_{t,i} w_i (V_full (x0 - out))_i^2 / (T D).
static double ref_loss(const Pca *p, const double *out, int Cout, const float *x0, const float *t) {
    double total = 0;
    for (int b = 0; b < B; b++) {
        double e[N], pe[D];
        for (int i = 0; i < N; i++) e[i] = (double)x0[b * N + i] - out[(size_t)b * Cout * H * W + i];
        double sig = sqrt(2.0) * t[b] / 999.0, lam = 1.0 / (1.0 + sig * sig), s = 0;
        for (int k = 0; k < T; k++) {
            patch_of(e, k, pe);
            for (int i = 0; i < D; i++) {
                double r = 0;
                for (int j = 0; j < D; j++) r += (double)p->basis[i * D + j] * pe[j];
                s += (i < p->d ? 1.0 : 0.1) * r * r;
            }
        }
        total += lam * s / (T * D);
    }
    return total / B;
}

static void test_gradient(const Pca *p, int Cout) {
    Objective o;
    objective_init(&o, OBJ_LDAE);
    objective_set_pca(&o, p, C, H, W, "test");
    float t[B] = {0, 10, 999};
    float *x0 = random_images(B, 3), *out = random_images(2 * B, 4);   // out uses B*Cout*H*W of it
    long no = (long)B * Cout * H * W;
    float *g = xmalloc(no * sizeof(float));
    float L = objective_loss(&o, out, x0, t, B, C, Cout, H * W, g);
    double *od = xmalloc(no * sizeof(double));
    for (long i = 0; i < no; i++) od[i] = out[i];
    double Lref = ref_loss(p, od, Cout, x0, t);
    CHECK(fabs(L - Lref) <= 1e-6 * fabs(Lref), "l-DAE loss %.9g vs float64 %.9g (Cout %d)", L, Lref, Cout);
    double h = 1e-3, worst = 0, gmax = 0;
    for (long i = 0; i < no; i++) gmax = fmax(gmax, fabs(g[i]));
    for (long i = 0; i < no; i++) {
        double o0 = od[i];
        od[i] = o0 + h;
        double lp = ref_loss(p, od, Cout, x0, t);
        od[i] = o0 - h;
        double lm = ref_loss(p, od, Cout, x0, t);
        od[i] = o0;
        double fd = (lp - lm) / (2 * h);
        worst = fmax(worst, fabs(fd - g[i]));
    }
    CHECK(gmax > 0 && worst <= 1e-5 * gmax, "d loss / d out vs float64 central differences: worst %.3g (max |g| %.3g, Cout %d)",
          worst, gmax, Cout);
    int extra_zero = 1;
    for (int b = 0; b < B; b++)
        for (long i = N; i < (long)Cout * H * W; i++) extra_zero &= g[(size_t)b * Cout * H * W + i] == 0;
    CHECK(extra_zero, "learned-sigma channels get zero gradient (Cout %d)", Cout);
    free(x0); free(out); free(g); free(od);
}

// out = x0 - V_full^T e_k on one patch of one sample: r = e_k there, so L = lambda_t w_k / (T D B).
static void test_weights(const Pca *p) {
    Objective o;
    objective_init(&o, OBJ_LDAE);
    objective_set_pca(&o, p, C, H, W, "test");
    float *x0 = random_images(B, 5), *out = xmalloc((size_t)B * N * sizeof(float));
    float t[B] = {500, 0, 999};
    int ks[3] = {0, p->d - 1, p->d};
    for (int q = 0; q < 3; q++) {
        int k = ks[q];
        memcpy(out, x0, sizeof(float) * B * N);
        float coords[T * D] = {0}, img[N];
        coords[1 * D + k] = 1;   // patch 1
        pca_unproject_full_nomean(p, coords, 1, H, W, img);
        for (int i = 0; i < N; i++) out[i] -= img[i];
        float L = objective_loss(&o, out, x0, t, B, C, C, H * W, NULL);
        double s = sqrt(2.0) * 500 / 999, lam = 1 / (1 + s * s), w = k < p->d ? 1.0 : 0.1;
        double want = lam * w / ((double)T * D * B);
        CHECK(fabs(L - want) <= 1e-5 * want, "component %d at t = 500: loss %.8g, want lambda w / (T D B) = %.8g", k, L, want);
    }
    CHECK(fabs(ldae_sigma(999) - sqrt(2.0)) < 1e-12 && ldae_sigma(0) == 0, "sigma_t: 0 at t = 0, sqrt 2 at t = 999");
    CHECK(ldae_lambda(0) == 1 && fabs(ldae_lambda(999) - 1.0 / 3) < 1e-12, "lambda_t: 1 at t = 0, 1/3 at t = 999");
    free(x0); free(out);
}

static void test_make_pair(const Pca *p, const char *what) {
    Objective o;
    objective_init(&o, OBJ_LDAE);
    objective_set_pca(&o, p, C, H, W, "test");
    float *x = random_images(B, 6), *noise = random_images(B, 7);
    float *xt = xmalloc(sizeof(float) * B * N), *tg = xmalloc(sizeof(float) * B * N), *rec = xmalloc(sizeof(float) * B * N);
    float *z = xmalloc(sizeof(float) * B * T * DK), *zt = xmalloc(sizeof(float) * B * T * DK);
    // t = 0: x_t = V^T V (x - mean) + mean, the PCA reconstruction, in float64 from its definition
    float t0[B] = {0, 0, 0};
    objective_make_pair(&o, xt, tg, x, noise, t0, B, N);
    pca_encode(p, x, B, H, W, z);
    pca_decode(p, z, B, H, W, rec);
    CHECK(close_enough(xt, rec, (long)B * N, 1e-6, 1e-5, "x_t(0)"), "%s: x_t at t = 0 = pca_decode(pca_encode(x))", what);
    CHECK(!memcmp(tg, x, sizeof(float) * B * N), "%s: the target is the clean image", what);
    if (!p->whitened) {
        double worst = 0;
        for (int b = 0; b < B; b++) {
            double xd[N], pv[D];
            for (int i = 0; i < N; i++) xd[i] = x[b * N + i];
            int gw = W / P;
            for (int k = 0; k < T; k++) {
                patch_of(xd, k, pv);
                double want[D];
                for (int i = 0; i < D; i++) want[i] = p->mean[i];
                for (int c = 0; c < p->d; c++) {
                    double zc = 0;
                    for (int i = 0; i < D; i++) zc += (double)p->basis[c * D + i] * (pv[i] - p->mean[i]);
                    for (int i = 0; i < D; i++) want[i] += zc * p->basis[c * D + i];
                }
                for (int cc = 0; cc < C; cc++)
                    for (int i = 0; i < P; i++)
                        for (int j = 0; j < P; j++) {
                            float got = xt[b * N + (cc * H + (k / gw) * P + i) * W + (k % gw) * P + j];
                            worst = fmax(worst, fabs(got - want[(cc * P + i) * P + j]));
                        }
            }
        }
        CHECK(worst < 1e-5, "%s: x_t(0) = mean + V^T V (x - mean) per patch (worst %.3g)", what, worst);
    }
    // any t: the latent of x_t is z0 + sigma_t eps, eps = the first T*d values of each sample's noise
    float t1[B] = {999, 10, 437};
    objective_make_pair(&o, xt, tg, x, noise, t1, B, N);
    pca_encode(p, xt, B, H, W, zt);
    double worst = 0;
    for (int b = 0; b < B; b++) {
        double s = sqrt(2.0) * t1[b] / 999;
        for (int k = 0; k < T * DK; k++)
            worst = fmax(worst, fabs(zt[b * T * DK + k] - z[b * T * DK + k] - s * noise[b * N + k]));
    }
    CHECK(worst < 2e-5, "%s: pca_encode(x_t) = z0 + sigma_t eps (worst %.3g)", what, worst);
    free(x); free(noise); free(xt); free(tg); free(rec); free(z); free(zt);
}

// (t sampling is checked for ldae and denoise together in test_traj.c)
static void test_name(void) {
    CHECK(objective_parse("ldae") == OBJ_LDAE && !strcmp(objective_name(OBJ_LDAE), "ldae"), "objective name ldae");
}

static void test_embedded(const Pca *p) {
    char path[] = "/tmp/ddm-test-ldae-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    StWriter *w = st_writer_new();
    float dummy[1] = {1};
    int64_t s1[1] = {1};
    st_writer_add(w, "x", ST_F32, 1, s1, dummy);
    pca_st_add(w, p, "pca.");
    st_writer_meta(w, "format", "ddm-dit-1");
    st_writer_write(w, path);
    st_writer_free(w);
    StFile *f = st_load(path);
    Pca *q = checkpoint_pca(f);
    CHECK(q && q->patch == p->patch && q->channels == p->channels && q->d == p->d && q->centered == p->centered &&
              q->whitened == p->whitened && !memcmp(q->basis, p->basis, sizeof(float) * D * D) &&
              !memcmp(q->mean, p->mean, sizeof(float) * D) && !memcmp(q->eigenvalues, p->eigenvalues, sizeof(double) * D),
          "the tokenizer embedded in a checkpoint reads back identical");
    pca_free(q);
    st_free(f);
    remove(path);
}

int main(void) {
    float *fit = random_images(50, 1);
    Pca *p = pca_fit(fit, 50, C, H, W, P, DK, 600, 1, 0, 2);
    Pca *pw = pca_fit(fit, 50, C, H, W, P, DK, 600, 1, 1, 2);
    test_gradient(p, C);
    test_gradient(p, 2 * C);
    test_weights(p);
    test_make_pair(p, "centred");
    test_make_pair(pw, "whitened");
    test_name();
    test_embedded(p);
    pca_free(p);
    pca_free(pw);
    free(fit);
    TEST_MAIN_END();
}
