// Patch-wise PCA tokenizer: exact inverse at d = D, orthonormal basis, eigenvalues = coordinate
// variances, whitening, truncation error = dropped eigenvalues, recovery of a known low-rank
// structure, patch layout (c, i, j), determinism, save/load, the public API, and one-line errors.
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "common.h"
#include "ddm.h"
#include "io/safetensors.h"
#include "rng.h"
#include "test.h"
#include "tok/pca.h"

// Synthetic images whose p x p x C patches (in (c, i, j) order) are i.i.d.
// x = mu + sum_k s_k g_k q_k + sigma * noise, q_k orthonormal: covariance eigenvalues s_k^2 + sigma^2
// (k < R) and sigma^2.
enum { SC = 2, SH = 8, SW = 12, SP = 2, SD = SP * SP * SC, SR = 3, SN = 1000, ST = (SH / SP) * (SW / SP) };
static const double s_k[SR] = {3.0, 1.5, 0.8};
static const double sigma = 0.1;
static float q[SR][SD], mu[SD];
static char tmpdir[] = "/tmp/ddm-test-pca.XXXXXX";

static void put_patch(float *img, int C, int H, int W, int p, int py, int px, const float *x) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++)
                img[((size_t)c * H + py * p + i) * W + px * p + j] = x[(c * p + i) * p + j];
}
static void get_patch(const float *img, int C, int H, int W, int p, int py, int px, float *x) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < p; i++)
            for (int j = 0; j < p; j++)
                x[(c * p + i) * p + j] = img[((size_t)c * H + py * p + i) * W + px * p + j];
}

static float *make_lowrank(void) {
    Rng r;
    rng_init(&r, 7, 0);
    for (int k = 0; k < SR; k++) { // Gram-Schmidt on random vectors
        double v[SD];
        for (int i = 0; i < SD; i++) v[i] = rng_normal(&r);
        for (int m = 0; m < k; m++) {
            double dot = 0;
            for (int i = 0; i < SD; i++) dot += v[i] * q[m][i];
            for (int i = 0; i < SD; i++) v[i] -= dot * q[m][i];
        }
        double nn = 0;
        for (int i = 0; i < SD; i++) nn += v[i] * v[i];
        for (int i = 0; i < SD; i++) q[k][i] = (float)(v[i] / sqrt(nn));
    }
    for (int i = 0; i < SD; i++) mu[i] = 0.5f + 0.1f * i;
    float *imgs = xmalloc((size_t)SN * SC * SH * SW * sizeof(float));
    for (int b = 0; b < SN; b++)
        for (int t = 0; t < ST; t++) {
            float x[SD];
            for (int i = 0; i < SD; i++) x[i] = mu[i] + (float)(sigma * rng_normal(&r));
            for (int k = 0; k < SR; k++) {
                float g = (float)(s_k[k] * rng_normal(&r));
                for (int i = 0; i < SD; i++) x[i] += g * q[k][i];
            }
            put_patch(imgs + (size_t)b * SC * SH * SW, SC, SH, SW, SP, t / (SW / SP), t % (SW / SP), x);
        }
    return imgs;
}

static double max_abs_diff(const float *a, const float *b, long n) {
    double m = 0;
    for (long i = 0; i < n; i++) { double d = fabs((double)a[i] - b[i]); if (!(d <= m)) m = d; }
    return m;
}

static void test_exact_inverse(const float *imgs) {
    const long ni = (long)SN * SC * SH * SW;
    float *lat = xmalloc((size_t)SN * ST * SD * sizeof(float)), *rec = xmalloc(ni * sizeof(float));
    for (int center = 0; center <= 1; center++)
        for (int whiten = 0; whiten <= 1; whiten++) {
            Pca *p = pca_fit(imgs, SN, SC, SH, SW, SP, SD, 50000, center, whiten, 1);
            pca_encode(p, imgs, SN, SH, SW, lat);
            pca_decode(p, lat, SN, SH, SW, rec);
            double e = max_abs_diff(rec, imgs, ni);
            CHECK(e < 1e-4, "d = D round trip (center %d, whiten %d): max error %g", center, whiten, e);
            // orthonormal basis, descending eigenvalues
            double worst = 0;
            for (int a = 0; a < SD; a++)
                for (int b = 0; b < SD; b++) {
                    double dot = 0;
                    for (int i = 0; i < SD; i++) dot += (double)p->basis[a * SD + i] * p->basis[b * SD + i];
                    double d = fabs(dot - (a == b));
                    if (d > worst) worst = d;
                }
            CHECK(worst < 1e-5, "V V^T = I (center %d, whiten %d): worst %g", center, whiten, worst);
            int desc = 1;
            for (int k = 1; k < SD; k++) desc &= p->eigenvalues[k] <= p->eigenvalues[k - 1];
            CHECK(desc && p->eigenvalues[SD - 1] >= 0, "eigenvalues descending and non-negative");
            // sign convention: the largest-|.| entry of each component is positive
            int signs = 1;
            for (int k = 0; k < SD; k++) {
                int arg = 0;
                for (int i = 1; i < SD; i++) if (fabsf(p->basis[k * SD + i]) > fabsf(p->basis[k * SD + arg])) arg = i;
                signs &= p->basis[k * SD + arg] > 0;
            }
            CHECK(signs, "sign convention (center %d, whiten %d)", center, whiten);
            // coordinate statistics over all 24000 patches (the fit sampled 50000 of them, with repeats)
            double m1[SD] = {0}, m2[SD] = {0};
            long N = (long)SN * ST;
            for (long r = 0; r < N; r++)
                for (int k = 0; k < SD; k++) { double z = lat[r * SD + k]; m1[k] += z; m2[k] += z * z; }
            int var_ok = 1, unit_ok = 1;
            for (int k = 0; k < SD; k++) {
                double mean = m1[k] / N, var = m2[k] / N - mean * mean, second = m2[k] / N;
                double stat = center ? var : second; // the uncentred fit diagonalises the second moment
                if (!whiten && fabs(stat / p->eigenvalues[k] - 1) > 0.05) {
                    var_ok = 0;
                    fprintf(stderr, "  component %d: coordinate %s %g, eigenvalue %g\n", k, center ? "variance" : "second moment", stat, p->eigenvalues[k]);
                }
                if (whiten && fabs(stat - 1) > 0.05) {
                    unit_ok = 0;
                    fprintf(stderr, "  whitened component %d: %g\n", k, stat);
                }
                if (center && fabs(mean) > 0.05 * (whiten ? 1 : sqrt(p->eigenvalues[k])) + 1e-3) var_ok = unit_ok = 0;
            }
            if (!whiten) CHECK(var_ok, "eigenvalues = variance of the encoded coordinates (center %d)", center);
            else CHECK(unit_ok, "whitened coordinates have unit variance (center %d)", center);
            pca_free(p);
        }
    free(lat);
    free(rec);
}

static void test_known_structure(const float *imgs) {
    Pca *p = pca_fit(imgs, SN, SC, SH, SW, SP, SR, 100000, 1, 0, 3);
    for (int k = 0; k < SD; k++) {
        double want = (k < SR ? s_k[k] * s_k[k] : 0) + sigma * sigma;
        CHECK(fabs(p->eigenvalues[k] / want - 1) < 0.06, "eigenvalue %d: %g, want %g", k, p->eigenvalues[k], want);
    }
    for (int k = 0; k < SR; k++) {
        double dot = 0;
        for (int i = 0; i < SD; i++) dot += (double)p->basis[k * SD + i] * q[k][i];
        CHECK(fabs(dot) > 0.995, "component %d aligned with the planted direction: |cos| = %g", k, fabs(dot));
    }
    double mean_err = 0;
    for (int i = 0; i < SD; i++) mean_err = fmax(mean_err, fabs(p->mean[i] - mu[i]));
    CHECK(mean_err < 0.05, "mean patch recovered: max error %g", mean_err);
    pca_free(p);
}

// d < D: the mean squared reconstruction error per patch (summed over D) is the sum of the dropped
// eigenvalues.
static void test_truncation(const float *imgs) {
    const long ni = (long)SN * SC * SH * SW;
    float *lat = xmalloc((size_t)SN * ST * SD * sizeof(float)), *rec = xmalloc(ni * sizeof(float));
    for (int d = 1; d < SD; d += 3) {
        Pca *p = pca_fit(imgs, SN, SC, SH, SW, SP, d, 50000, 1, 0, 5);
        pca_encode(p, imgs, SN, SH, SW, lat);
        pca_decode(p, lat, SN, SH, SW, rec);
        double se = 0, dropped = 0;
        for (long i = 0; i < ni; i++) se += ((double)rec[i] - imgs[i]) * ((double)rec[i] - imgs[i]);
        se /= (double)SN * ST;
        for (int k = d; k < SD; k++) dropped += p->eigenvalues[k];
        CHECK(fabs(se / dropped - 1) < 0.05, "d = %d: reconstruction error per patch %g, dropped eigenvalues %g", d, se, dropped);
        pca_free(p);
    }
    free(lat);
    free(rec);
}

// Small synthetic 3-channel images, patch 4: token order and patch vector order (c, i, j).
static void test_layout(void) {
    enum { C = 3, H = 8, W = 12, P = 4, D = P * P * C, N = 60, T = (H / P) * (W / P) };
    float *imgs = xmalloc((size_t)N * C * H * W * sizeof(float));
    Rng r;
    rng_init(&r, 11, 0);
    for (int b = 0; b < N; b++) {
        float a = rng_normal(&r), fx = rng_uniform(&r), fy = rng_uniform(&r);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    imgs[(((size_t)b * C + c) * H + y) * W + x] =
                        a * sinf(fx * x + fy * y + c) + 0.2f * rng_normal(&r) + 0.1f * c;
    }
    float *lat = xmalloc((size_t)N * T * D * sizeof(float)), *rec = xmalloc((size_t)N * C * H * W * sizeof(float));
    Pca *p = pca_fit(imgs, N, C, H, W, P, D, 5000, 1, 0, 2);
    pca_encode(p, imgs, N, H, W, lat);
    pca_decode(p, lat, N, H, W, rec);
    double e = max_abs_diff(rec, imgs, (long)N * C * H * W);
    CHECK(e < 1e-4, "images 3x8x12, patch 4, d = D: max round-trip error %g", e);
    // token t = py * (W/P) + px; coordinate k = basis_k . (patch - mean) with the patch read in (c, i, j) order
    double worst = 0;
    for (int b = 0; b < N; b += 7)
        for (int t = 0; t < T; t++) {
            float x[D];
            get_patch(imgs + (size_t)b * C * H * W, C, H, W, P, t / (W / P), t % (W / P), x);
            for (int k = 0; k < D; k += 5) {
                double z = 0;
                for (int i = 0; i < D; i++) z += (double)p->basis[k * D + i] * (x[i] - p->mean[i]);
                worst = fmax(worst, fabs(z - lat[((size_t)b * T + t) * D + k]));
            }
        }
    CHECK(worst < 1e-4, "latent [b, t, k] = V_k (patch(b, t) - mean), patch order (c, i, j): worst %g", worst);
    pca_free(p);
    free(imgs); free(lat); free(rec);
}

static void test_determinism_io_api(const float *imgs) {
    const int d = 5;
    Pca *a = pca_fit(imgs, SN, SC, SH, SW, SP, d, 20000, 1, 1, 42);
    Pca *b = pca_fit(imgs, SN, SC, SH, SW, SP, d, 20000, 1, 1, 42);
    Pca *c = pca_fit(imgs, SN, SC, SH, SW, SP, d, 20000, 1, 1, 43);
    CHECK(!memcmp(a->basis, b->basis, SD * SD * sizeof(float)) && !memcmp(a->mean, b->mean, SD * sizeof(float)) &&
          !memcmp(a->eigenvalues, b->eigenvalues, SD * sizeof(double)), "same seed, same tokenizer");
    CHECK(memcmp(a->mean, c->mean, SD * sizeof(float)) != 0, "another seed samples other patches");

    char path[128];
    snprintf(path, sizeof path, "%s/p.safetensors", tmpdir);
    pca_save(a, path);
    Pca *l = pca_load(path);
    CHECK(l->patch == SP && l->channels == SC && l->D == SD && l->d == d && l->centered == 1 && l->whitened == 1,
          "loaded fields");
    const size_t nl = (size_t)SN * ST * d;
    float *za = xmalloc(nl * sizeof(float)), *zl = xmalloc(nl * sizeof(float));
    pca_encode(a, imgs, SN, SH, SW, za);
    pca_encode(l, imgs, SN, SH, SW, zl);
    CHECK(!memcmp(za, zl, nl * sizeof(float)), "save -> load gives an identical encode");

    // public API: same latents, same images
    ddm_pca *pub = ddm_pca_load(path);
    CHECK(ddm_pca_dim(pub) == d, "ddm_pca_dim %d", ddm_pca_dim(pub));
    float *zp = xmalloc(nl * sizeof(float));
    ddm_pca_encode(pub, imgs, SN, SC, SH, SW, zp);
    CHECK(!memcmp(za, zp, nl * sizeof(float)), "ddm_pca_encode = pca_encode");
    const size_t ni = (size_t)SN * SC * SH * SW;
    float *xa = xmalloc(ni * sizeof(float)), *xp = xmalloc(ni * sizeof(float));
    pca_decode(a, za, SN, SH, SW, xa);
    ddm_pca_decode(pub, za, SN, SC, SH, SW, xp);
    CHECK(!memcmp(xa, xp, ni * sizeof(float)), "ddm_pca_decode = pca_decode");
    ddm_pca_free(pub);

    // full-basis projection: first d coordinates = the (unwhitened) encode; no-mean variant is linear
    Pca *u = pca_fit(imgs, SN, SC, SH, SW, SP, d, 20000, 1, 0, 42);
    float *full = xmalloc((size_t)SN * ST * SD * sizeof(float)), *full0 = xmalloc((size_t)SN * ST * SD * sizeof(float));
    pca_encode(u, imgs, SN, SH, SW, za);
    pca_project_full(u, imgs, SN, SH, SW, full);
    double worst = 0;
    for (size_t r = 0; r < (size_t)SN * ST; r++)
        for (int k = 0; k < d; k++) worst = fmax(worst, fabs(full[r * SD + k] - za[r * d + k]));
    CHECK(worst < 1e-5, "pca_project_full: first d coordinates = pca_encode (worst %g)", worst);
    pca_project_full_nomean(u, imgs, SN, SH, SW, full0);
    double vm[SD];
    for (int k = 0; k < SD; k++) {
        vm[k] = 0;
        for (int i = 0; i < SD; i++) vm[k] += (double)u->basis[k * SD + i] * u->mean[i];
    }
    worst = 0;
    for (size_t r = 0; r < (size_t)SN * ST; r++)
        for (int k = 0; k < SD; k++) worst = fmax(worst, fabs(full0[r * SD + k] - vm[k] - full[r * SD + k]));
    CHECK(worst < 1e-4, "pca_project_full_nomean = pca_project_full + V mean (worst %g)", worst);
    // the full projection preserves the squared norm (V_full orthogonal)
    double n_x = 0, n_z = 0;
    for (size_t i = 0; i < ni; i++) n_x += (double)imgs[i] * imgs[i];
    for (size_t i = 0; i < (size_t)SN * ST * SD; i++) n_z += (double)full0[i] * full0[i];
    CHECK(fabs(n_z / n_x - 1) < 1e-5, "||V_full x||^2 = ||x||^2 (ratio %.8f)", n_z / n_x);

    free(full); free(full0); free(xa); free(xp); free(za); free(zl); free(zp);
    pca_free(a); pca_free(b); pca_free(c); pca_free(l); pca_free(u);
}

// Runs fn in a child; it must exit with status 1 after one "ddm: error:" line containing text.
static const float *g_imgs;
static char g_path[256];
static void expect_fatal(const char *what, const char *text, void (*fn)(void)) {
    char buf[4096];
    int status = run_in_child(fn, buf, sizeof buf), lines = 0;
    for (char *s = buf; (s = strstr(s, "ddm: error:")); s++) lines++;
    CHECK(status == 1 && lines == 1 && strstr(buf, text), "%s: status %d, stderr '%s' (want '%s')", what, status,
          buf, text);
}
static void f_d_gt_D(void) { pca_fit(g_imgs, SN, SC, SH, SW, SP, SD + 1, 1000, 1, 0, 1); }
static void f_d_gt_D16(void) { pca_fit(g_imgs, SN, 1, SH, SW * SC, 4, 40, 1000, 1, 0, 1); }
static void f_d_zero(void) { pca_fit(g_imgs, SN, SC, SH, SW, SP, 0, 1000, 1, 0, 1); }
static void f_d_gt_n(void) { pca_fit(g_imgs, SN, SC, SH, SW, SP, 6, 5, 1, 0, 1); }
static void f_n_small(void) { pca_fit(g_imgs, SN, SC, SH, SW, SP, 1, 1, 1, 0, 1); }
static void f_indivisible(void) { pca_fit(g_imgs, SN, SC, SH, SW, 5, 4, 1000, 1, 0, 1); }
static void f_enc_channels(void) {
    ddm_pca *p = ddm_pca_load(g_path);
    float z[1024];
    ddm_pca_encode(p, g_imgs, 1, 3, SH, SW, z);
}
static void f_dec_size(void) {
    ddm_pca *p = ddm_pca_load(g_path);
    float x[4096], z[4096] = {0};
    ddm_pca_decode(p, z, 1, SC, SH, 7, x);
}
static void f_internal_enc_size(void) {
    Pca *p = pca_load(g_path);
    float z[4096];
    pca_encode(p, g_imgs, 1, 9, SW, z);
}
static char g_bad[256], g_notpca[256], g_missing[256];
static void f_corrupt(void) { pca_load(g_bad); }
static void f_notpca(void) { pca_load(g_notpca); }
static void f_missing(void) { pca_load(g_missing); }

static void test_errors(const float *imgs) {
    g_imgs = imgs;
    Pca *p = pca_fit(imgs, SN, SC, SH, SW, SP, 4, 2000, 1, 0, 1);
    snprintf(g_path, sizeof g_path, "%s/e.safetensors", tmpdir);
    pca_save(p, g_path);
    pca_free(p);
    expect_fatal("d > D", "d = 9 is larger than the patch dimension D = 8 (patch 2 x 2 x 2)", f_d_gt_D);
    expect_fatal("d > D (1 channel, patch 4)", "d = 40 is larger than the patch dimension D = 16 (patch 4 x 4 x 1)", f_d_gt_D16);
    expect_fatal("d = 0", "d = 0", f_d_zero);
    expect_fatal("d > n_patches", "d = 6 is larger than the number of sampled patches (5)", f_d_gt_n);
    expect_fatal("n_patches < 2", "at least 2", f_n_small);
    expect_fatal("patch does not divide", "image size 8x12 is not divisible by the patch size 5", f_indivisible);
    expect_fatal("encode: wrong channels", "fitted on 2-channel images", f_enc_channels);
    expect_fatal("decode: wrong size", "image size 8x7 is not divisible by the patch size 2", f_dec_size);
    expect_fatal("encode: wrong size", "image size 9x12 is not divisible by the patch size 2", f_internal_enc_size);
    snprintf(g_bad, sizeof g_bad, "%s/bad.safetensors", tmpdir);
    FILE *f = fopen(g_bad, "wb");
    fwrite("\xff\xff\xff\x00\x00\x00\x00\x00{}", 1, 10, f);
    fclose(f);
    expect_fatal("corrupt file", "bad.safetensors", f_corrupt);
    // a valid safetensors file that is not a PCA tokenizer
    snprintf(g_notpca, sizeof g_notpca, "%s/other.safetensors", tmpdir);
    StWriter *w = st_writer_new();
    float v[2] = {1, 2};
    int64_t s[1] = {2};
    st_writer_add(w, "x", ST_F32, 1, s, v);
    st_writer_meta(w, "format", "ddm-dit-1");
    st_writer_write(w, g_notpca);
    st_writer_free(w);
    expect_fatal("not a PCA file", "not a ddm PCA tokenizer", f_notpca);
    snprintf(g_missing, sizeof g_missing, "%s/none.safetensors", tmpdir);
    expect_fatal("missing file", "does not exist", f_missing);
}

int main(void) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    float *imgs = make_lowrank();
    test_exact_inverse(imgs);
    test_known_structure(imgs);
    test_truncation(imgs);
    test_layout();
    test_determinism_io_api(imgs);
    test_errors(imgs);
    free(imgs);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
