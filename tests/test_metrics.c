// FID / KID / precision-recall numerics: closed forms for Gaussians (diagonal, commuting,
// non-commuting checked by an independent matrix square root), sampling convergence, batching,
// rank-deficient covariances and their warning, KID and precision/recall on constructed sets.
#include "eval/metrics.h"
#include "rng.h"
#include "test.h"
#include <lapacke.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

// ---- helpers -------------------------------------------------------------------------------------
static double rel_err(double got, double want) { return fabs(got - want) / fmax(fabs(want), 1e-300); }

// Random rotation: modified Gram-Schmidt on a Gaussian matrix (rows orthonormal).
static void random_rotation(Rng *r, double *q, int d) {
    for (int i = 0; i < d * d; i++) q[i] = rng_normal(r);
    for (int i = 0; i < d; i++) {
        for (int j = 0; j < i; j++) {
            double dot = 0;
            for (int a = 0; a < d; a++) dot += q[i * d + a] * q[j * d + a];
            for (int a = 0; a < d; a++) q[i * d + a] -= dot * q[j * d + a];
        }
        double nrm = 0;
        for (int a = 0; a < d; a++) nrm += q[i * d + a] * q[i * d + a];
        nrm = sqrt(nrm);
        for (int a = 0; a < d; a++) q[i * d + a] /= nrm;
    }
}

// S = Q^T diag(l) Q (Q rows orthonormal).
static void rotated_diag(const double *q, const double *l, double *s, int d) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double v = 0;
            for (int k = 0; k < d; k++) v += q[k * d + i] * l[k] * q[k * d + j];
            s[i * d + j] = v;
        }
}

// Random SPD matrix with eigenvalues in [lo, hi].
static void random_spd(Rng *r, double *s, int d, double lo, double hi) {
    double *q = malloc(sizeof(double) * d * d), *l = malloc(sizeof(double) * d);
    random_rotation(r, q, d);
    for (int i = 0; i < d; i++) l[i] = lo + (hi - lo) * rng_uniform(r);
    rotated_diag(q, l, s, d);
    free(q); free(l);
}

static void matmul(const double *a, const double *b, double *c, int d) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double v = 0;
            for (int k = 0; k < d; k++) v += a[i * d + k] * b[k * d + j];
            c[i * d + j] = v;
        }
}

static void invert(double *a, int d) {
    lapack_int ipiv[64];
    if (LAPACKE_dgetrf(LAPACK_ROW_MAJOR, d, d, a, d, ipiv) || LAPACKE_dgetri(LAPACK_ROW_MAJOR, d, a, d, ipiv)) {
        fprintf(stderr, "invert failed\n");
        exit(2);
    }
}

// tr(sqrtm(A)) for a general (non-symmetric) A with positive eigenvalues: Denman-Beavers iteration
// Y <- (Y + Z^-1)/2, Z <- (Z + Y^-1)/2 from Y = A, Z = I; Y -> A^{1/2}. Independent of the
// symmetric-eigendecomposition route used by frechet_distance.
static double trace_sqrtm_db(const double *a, int d) {
    size_t dd = (size_t)d * d;
    double *y = malloc(dd * sizeof(double)), *z = calloc(dd, sizeof(double));
    double *yi = malloc(dd * sizeof(double)), *zi = malloc(dd * sizeof(double));
    memcpy(y, a, dd * sizeof(double));
    for (int i = 0; i < d; i++) z[i * d + i] = 1;
    for (int it = 0; it < 60; it++) {
        memcpy(yi, y, dd * sizeof(double)); invert(yi, d);
        memcpy(zi, z, dd * sizeof(double)); invert(zi, d);
        for (size_t i = 0; i < dd; i++) { y[i] = 0.5 * (y[i] + zi[i]); z[i] = 0.5 * (z[i] + yi[i]); }
    }
    double tr = 0;
    for (int i = 0; i < d; i++) tr += y[i * d + i];
    free(y); free(z); free(yi); free(zi);
    return tr;
}

static double trace(const double *s, int d) {
    double t = 0;
    for (int i = 0; i < d; i++) t += s[i * d + i];
    return t;
}

// Draws n samples of N(mu, S) as float rows (Cholesky by hand, d small).
static void sample_gaussian(Rng *r, const double *mu, const double *s, int d, long n, float *out) {
    double *l = calloc((size_t)d * d, sizeof(double)), *z = malloc(sizeof(double) * d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) {
            double v = s[i * d + j];
            for (int k = 0; k < j; k++) v -= l[i * d + k] * l[j * d + k];
            l[i * d + j] = i == j ? sqrt(v) : v / l[j * d + j];
        }
    for (long t = 0; t < n; t++) {
        for (int i = 0; i < d; i++) z[i] = rng_normal(r);
        for (int i = 0; i < d; i++) {
            double v = mu[i];
            for (int k = 0; k <= i; k++) v += l[i * d + k] * z[k];
            out[t * d + i] = (float)v;
        }
    }
    free(l); free(z);
}

// Runs f(arg) with stderr going into buf (one pipe, small output only); returns f's value.
static int capture_stderr(int (*f)(const void *), const void *arg, char *buf, size_t cap) {
    int p[2];
    if (pipe(p)) exit(2);
    fflush(stderr);
    int saved = dup(2);
    dup2(p[1], 2);
    int ret = f(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    ssize_t got = read(p[0], buf, cap - 1);
    buf[got > 0 ? got : 0] = 0;
    close(p[0]);
    return ret;
}

static const char *warn_name = "generated";
static int warn_cb(const void *s) { return featstats_warn_if_singular((const FeatStats *)s, warn_name); }

// ---- FD ------------------------------------------------------------------------------------------
static void test_fd_self(void) {
    Rng r; rng_init(&r, 1, 0);
    const int d = 16; const long n = 3000;
    float *f = malloc(sizeof(float) * n * d);
    double mu[16], s[256];
    for (int i = 0; i < d; i++) mu[i] = 3 + i;
    random_spd(&r, s, d, 0.01, 4);
    sample_gaussian(&r, mu, s, d, n, f);
    FeatStats st; featstats_init(&st, d);
    featstats_add(&st, f, (int)n);
    double m[16], c[256];
    featstats_mean_cov(&st, m, c);
    double fd = frechet_distance(m, c, m, c, d);
    CHECK(fd >= 0 && fd < 1e-8 * trace(c, d), "FD(self) = %g, tr %g", fd, trace(c, d));
    CHECK(featstats_warn_if_singular(&st, "x") == 0, "n > dim is not singular");
    featstats_free(&st);

    double km, ks;
    kernel_inception_distance(f, n, f, n, d, 50, 500, 7, &km, &ks);
    CHECK(fabs(km) <= ks && ks > 0, "KID(self) = %g +- %g", km, ks);
    double p, rc;
    precision_recall(f, n, f, n, d, 3, &p, &rc);
    CHECK(p == 1 && rc == 1, "PR(self) = %g %g", p, rc);
    free(f);
}

static void test_fd_diagonal(void) {
    Rng r; rng_init(&r, 2, 0);
    const int d = 7;
    double mu1[7], mu2[7], s1[49] = {0}, s2[49] = {0}, want = 0;
    for (int i = 0; i < d; i++) {
        mu1[i] = rng_normal(&r); mu2[i] = rng_normal(&r);
        double a = 0.1 + 3 * rng_uniform(&r), b = 0.1 + 3 * rng_uniform(&r);
        s1[i * d + i] = a; s2[i * d + i] = b;
        want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + (sqrt(a) - sqrt(b)) * (sqrt(a) - sqrt(b));
    }
    double fd = frechet_distance(mu1, s1, mu2, s2, d);
    CHECK(rel_err(fd, want) < 1e-11, "diagonal FD %.15g want %.15g", fd, want);
    // equal means, equal covariances up to one entry
    double fd0 = frechet_distance(mu1, s1, mu1, s1, d);
    CHECK(fd0 < 1e-12, "diagonal FD(self) %g", fd0);
    // zero covariances: only the means
    double z[49] = {0}, dm = 0;
    for (int i = 0; i < d; i++) dm += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
    CHECK(rel_err(frechet_distance(mu1, z, mu2, z, d), dm) < 1e-14, "zero covariances give ||dmu||^2");
}

static void test_fd_commuting(void) {
    Rng r; rng_init(&r, 3, 0);
    const int d = 9;
    double q[81], a[9], b[9], s1[81], s2[81], mu1[9], mu2[9], want = 0;
    random_rotation(&r, q, d);
    for (int i = 0; i < d; i++) {
        a[i] = 0.05 + 5 * rng_uniform(&r); b[i] = 0.05 + 5 * rng_uniform(&r);
        mu1[i] = rng_normal(&r); mu2[i] = mu1[i] + 0.3 * rng_normal(&r);
        want += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i]));
    }
    rotated_diag(q, a, s1, d);
    rotated_diag(q, b, s2, d);
    double fd = frechet_distance(mu1, s1, mu2, s2, d);
    CHECK(rel_err(fd, want) < 1e-9, "commuting FD %.15g want %.15g", fd, want);
    double fd21 = frechet_distance(mu2, s2, mu1, s1, d);
    CHECK(rel_err(fd21, want) < 1e-9, "commuting FD swapped %.15g want %.15g", fd21, want);
}

// 2x2 PSD square root: sqrt(A) = (A + sqrt(det A) I) / sqrt(tr A + 2 sqrt(det A)).
static void sqrt2x2(const double *a, double *out) {
    double det = a[0] * a[3] - a[1] * a[2], sd = sqrt(fmax(det, 0));
    double t = sqrt(a[0] + a[3] + 2 * sd);
    out[0] = (a[0] + sd) / t; out[1] = a[1] / t; out[2] = a[2] / t; out[3] = (a[3] + sd) / t;
}

static void test_fd_noncommuting(void) {
    Rng r; rng_init(&r, 4, 0);
    for (int trial = 0; trial < 20; trial++) {
        double s1[4], s2[4], mu1[2] = {rng_normal(&r), rng_normal(&r)}, mu2[2] = {rng_normal(&r), rng_normal(&r)};
        random_spd(&r, s1, 2, trial == 0 ? 0 : 0.01, 3); // trial 0: random range incl. near-singular
        random_spd(&r, s2, 2, 0.01, 3);
        if (trial == 1) { s1[0] = 1; s1[1] = s1[2] = 1; s1[3] = 1; } // exactly singular S1 (rank 1)
        double r1[4], t[4], a[4];
        sqrt2x2(s1, r1);
        matmul(r1, s2, t, 2);
        matmul(t, r1, a, 2); // S1^1/2 S2 S1^1/2
        double det = a[0] * a[3] - a[1] * a[2];
        double trs = sqrt(a[0] + a[3] + 2 * sqrt(fmax(det, 0))); // tr sqrt(A) of the 2x2 formula
        double want = (mu1[0] - mu2[0]) * (mu1[0] - mu2[0]) + (mu1[1] - mu2[1]) * (mu1[1] - mu2[1]) +
                      trace(s1, 2) + trace(s2, 2) - 2 * trs;
        double fd = frechet_distance(mu1, s1, mu2, s2, 2);
        CHECK(fabs(fd - want) < 1e-10 * (1 + fabs(want)), "2x2 trial %d: FD %.15g want %.15g", trial, fd, want);
        double fd21 = frechet_distance(mu2, s2, mu1, s1, 2);
        CHECK(fabs(fd21 - want) < 1e-10 * (1 + fabs(want)), "2x2 trial %d swapped: FD %.15g want %.15g", trial,
              fd21, want);
    }
    // dim 6 against Denman-Beavers sqrtm of the (non-symmetric) product S1 S2
    for (int trial = 0; trial < 5; trial++) {
        const int d = 6;
        double s1[36], s2[36], p[36], mu[6] = {0};
        random_spd(&r, s1, d, 0.02, 4);
        random_spd(&r, s2, d, 0.02, 4);
        matmul(s1, s2, p, d);
        double want = trace(s1, d) + trace(s2, d) - 2 * trace_sqrtm_db(p, d);
        double fd = frechet_distance(mu, s1, mu, s2, d);
        CHECK(fabs(fd - want) < 1e-9 * (1 + fabs(want)), "dim 6 trial %d: FD %.15g want (DB) %.15g", trial, fd,
              want);
    }
}

static void test_fd_sampling_and_batches(void) {
    Rng r; rng_init(&r, 5, 0);
    const int d = 4; const long n = 200000;
    double mu1[4] = {0, 1, -1, 0.5}, mu2[4] = {0.5, 1, -0.5, 0}, s1[16], s2[16];
    random_spd(&r, s1, d, 0.2, 2);
    random_spd(&r, s2, d, 0.2, 2);
    double want = frechet_distance(mu1, s1, mu2, s2, d);
    float *x = malloc(sizeof(float) * n * d), *y = malloc(sizeof(float) * n * d);
    sample_gaussian(&r, mu1, s1, d, n, x);
    sample_gaussian(&r, mu2, s2, d, n, y);
    FeatStats a, b, a2;
    featstats_init(&a, d); featstats_init(&b, d); featstats_init(&a2, d);
    featstats_add(&a, x, (int)n);
    featstats_add(&b, y, (int)n);
    // the same as a, in uneven batches (incl. an empty one and single rows)
    long sizes[] = {1, 0, 7, 1000, 1, 65536, 33333}, off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) { featstats_add(&a2, x + off * d, (int)sizes[i]); off += sizes[i]; }
    featstats_add(&a2, x + off * d, (int)(n - off));
    CHECK(a2.n == n, "batched n %ld", a2.n);
    double m1[4], c1[16], m2[4], c2[16], m1b[4], c1b[16];
    featstats_mean_cov(&a, m1, c1);
    featstats_mean_cov(&b, m2, c2);
    featstats_mean_cov(&a2, m1b, c1b);
    double worst = 0;
    for (int i = 0; i < d; i++) worst = fmax(worst, fabs(m1[i] - m1b[i]));
    for (int i = 0; i < d * d; i++) worst = fmax(worst, fabs(c1[i] - c1b[i]));
    CHECK(worst < 1e-12, "batched moments differ by %g", worst);
    // moments against a direct two-pass computation
    double mref[4] = {0}, cref[16] = {0};
    for (long t = 0; t < n; t++) for (int i = 0; i < d; i++) mref[i] += x[t * d + i];
    for (int i = 0; i < d; i++) mref[i] /= n;
    for (long t = 0; t < n; t++)
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) cref[i * d + j] += (x[t * d + i] - mref[i]) * (x[t * d + j] - mref[j]);
    worst = 0;
    for (int i = 0; i < d; i++) worst = fmax(worst, fabs(m1[i] - mref[i]));
    for (int i = 0; i < d * d; i++) worst = fmax(worst, fabs(c1[i] - cref[i] / (n - 1)));
    CHECK(worst < 1e-10, "moments vs two-pass differ by %g", worst);
    double fd = frechet_distance(m1, c1, m2, c2, d);
    CHECK(rel_err(fd, want) < 0.03, "sampled FD %.5g vs analytic %.5g", fd, want);
    // and at n = 2000 it is visibly farther (bias ~ 1/n): a sanity check that the test can fail
    FeatStats sa, sb;
    featstats_init(&sa, d); featstats_init(&sb, d);
    featstats_add(&sa, x, 2000); featstats_add(&sb, y, 2000);
    double ms[4], cs[16], mt[4], ct[16];
    featstats_mean_cov(&sa, ms, cs); featstats_mean_cov(&sb, mt, ct);
    double fds = frechet_distance(ms, cs, mt, ct, d);
    CHECK(isfinite(fds) && fds > 0 && rel_err(fds, want) < 0.3, "FD at n=2000 %.5g vs %.5g", fds, want);
    featstats_free(&a); featstats_free(&b); featstats_free(&a2); featstats_free(&sa); featstats_free(&sb);
    free(x); free(y);
}

static void test_fd_singular(void) {
    Rng r; rng_init(&r, 6, 0);
    const int d = 10;
    // n < dim samples: rank-deficient covariances
    float x[5 * 10], y[5 * 10];
    for (int i = 0; i < 50; i++) { x[i] = rng_normal(&r); y[i] = 0.5f + 2 * rng_normal(&r); }
    FeatStats a, b;
    featstats_init(&a, d); featstats_init(&b, d);
    featstats_add(&a, x, 5); featstats_add(&b, y, 5);
    double m1[10], c1[100], m2[10], c2[100];
    featstats_mean_cov(&a, m1, c1); featstats_mean_cov(&b, m2, c2);
    double fd = frechet_distance(m1, c1, m2, c2, d), fd21 = frechet_distance(m2, c2, m1, c1, d);
    CHECK(isfinite(fd) && fd > 0, "rank-deficient FD %g", fd);
    CHECK(rel_err(fd21, fd) < 1e-8, "rank-deficient FD not symmetric: %.15g vs %.15g", fd, fd21);
    double fds = frechet_distance(m1, c1, m1, c1, d);
    CHECK(isfinite(fds) && fds >= 0 && fds < 1e-8 * trace(c1, d), "rank-deficient FD(self) %g", fds);
    char buf[1024];
    int ret = capture_stderr(warn_cb, &a, buf, sizeof buf);
    CHECK(ret == 1, "warn_if_singular returned %d for n=5, dim=10", ret);
    CHECK(strncmp(buf, "ddm: warning: generated:", 24) == 0 && strstr(buf, "singular") &&
              strstr(buf, "more samples") && strstr(buf, "lower-dimensional") && strstr(buf, "rank <= N-1 = 4 < 10") &&
              strstr(buf, "at least 11 (dim + 1), better >= 100 (10x dim)") && strstr(buf, "computing it anyway") &&
              strchr(buf, '\n') == buf + strlen(buf) - 1,
          "warning line: '%s'", buf);
    // n == dim is still singular (rank <= n-1); n = dim+1 is not
    FeatStats e; featstats_init(&e, 4);
    float z[5 * 4];
    for (int i = 0; i < 20; i++) z[i] = rng_normal(&r);
    featstats_add(&e, z, 4);
    ret = capture_stderr(warn_cb, &e, buf, sizeof buf);
    CHECK(ret == 1 && strlen(buf) > 0, "n == dim warns");
    featstats_add(&e, z + 16, 1);
    ret = capture_stderr(warn_cb, &e, buf, sizeof buf);
    CHECK(ret == 0 && buf[0] == 0, "n = dim + 1 does not warn ('%s')", buf);
    featstats_free(&a); featstats_free(&b); featstats_free(&e);

    // rank-3 PSD matrices built as A A^T in double: the zero eigenvalues come out as +-1e-16
    const int D = 12;
    double A[12 * 3], B[12 * 12], s1[144], s2[144], mu[12] = {0};
    for (int i = 0; i < D * 3; i++) A[i] = rng_normal(&r);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double v = 0;
            for (int k = 0; k < 3; k++) v += A[i * 3 + k] * A[j * 3 + k];
            s1[i * D + j] = v;
        }
    for (int i = 0; i < D * D; i++) B[i] = rng_normal(&r);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double v = 0;
            for (int k = 0; k < D; k++) v += B[i * D + k] * B[j * D + k];
            s2[i * D + j] = v / D;
        }
    double e1 = frechet_distance(mu, s1, mu, s1, D);
    CHECK(isfinite(e1) && e1 >= 0 && e1 < 1e-8 * trace(s1, D), "rank-3 FD(self) %g", e1);
    double e12 = frechet_distance(mu, s1, mu, s2, D), e21 = frechet_distance(mu, s2, mu, s1, D);
    CHECK(isfinite(e12) && e12 > 0 && rel_err(e21, e12) < 1e-8, "rank-3 vs full: %.15g vs swapped %.15g", e12, e21);
    // explicitly negative round-off eigenvalues
    double q[9], l[3] = {2, 1, -1e-14}, l2[3] = {1, -3e-15, 0.5}, t1[9], t2[9], m3[3] = {0};
    random_rotation(&r, q, 3);
    rotated_diag(q, l, t1, 3);
    random_rotation(&r, q, 3);
    rotated_diag(q, l2, t2, 3);
    double n1 = frechet_distance(m3, t1, m3, t2, 3), n2 = frechet_distance(m3, t1, m3, t1, 3);
    CHECK(isfinite(n1) && n1 > 0 && isfinite(n2) && n2 >= 0 && n2 < 1e-12, "negative eigenvalues: %g %g", n1, n2);
}

// ---- KID ---------------------------------------------------------------------------------------
static long double naive_mmd(const float *x, const float *y, long m, int d) {
    long double sxx = 0, syy = 0, sxy = 0;
    for (long i = 0; i < m; i++)
        for (long j = 0; j < m; j++) {
            long double a = 0, b = 0, c = 0;
            for (int k = 0; k < d; k++) {
                a += (long double)x[i * d + k] * x[j * d + k];
                b += (long double)y[i * d + k] * y[j * d + k];
                c += (long double)x[i * d + k] * y[j * d + k];
            }
            a = a / d + 1; b = b / d + 1; c = c / d + 1;
            if (i != j) { sxx += a * a * a; syy += b * b * b; }
            sxy += c * c * c;
        }
    return (sxx + syy) / (m * (m - 1.0L)) - 2 * sxy / ((long double)m * m);
}

static void test_kid(void) {
    Rng r; rng_init(&r, 7, 0);
    const int d = 8; const long n = 1000;
    float *x = malloc(sizeof(float) * n * d), *y = malloc(sizeof(float) * n * d), *z = malloc(sizeof(float) * n * d);
    for (long i = 0; i < n * d; i++) { x[i] = rng_normal(&r); y[i] = rng_normal(&r); z[i] = 0.5f + rng_normal(&r); }
    double m0, s0, m1, s1, m2, s2;
    kernel_inception_distance(x, n, y, n, d, 50, 200, 1, &m0, &s0);
    CHECK(fabs(m0) < s0 && s0 > 0, "KID same distribution %g +- %g", m0, s0);
    kernel_inception_distance(x, n, z, n, d, 50, 200, 1, &m1, &s1);
    CHECK(m1 > 0 && m1 > 5 * s1 && m1 > 20 * fabs(m0), "KID shifted %g +- %g (same: %g)", m1, s1, m0);
    kernel_inception_distance(x, n, z, n, d, 50, 200, 1, &m2, &s2);
    CHECK(m2 == m1 && s2 == s1, "KID deterministic in the seed");
    kernel_inception_distance(x, n, z, n, d, 50, 200, 2, &m2, &s2);
    CHECK(m2 != m1 && fabs(m2 - m1) < 3 * s1, "KID other seed: %g vs %g", m2, m1);
    // subsets of the whole (smaller) set are permutations: every subset gives the full-set MMD_u
    const long m = 60;
    kernel_inception_distance(x, m, z, m, d, 4, 1000, 3, &m2, &s2);
    double want = (double)naive_mmd(x, z, m, d);
    CHECK(rel_err(m2, want) < 1e-10 && s2 < 1e-10 * fabs(want), "KID full set %.15g want %.15g (std %g)", m2,
          want, s2);
    free(x); free(y); free(z);
}

// ---- precision / recall ------------------------------------------------------------------------
static void naive_pr(const float *real, long nr, const float *fake, long nf, int d, int k, double *p, double *rc) {
    double *rr = malloc(sizeof(double) * nr), *rf = malloc(sizeof(double) * nf), *tmp = malloc(sizeof(double) * (nr + nf));
    const float *sets[2] = {real, fake}; long ns[2] = {nr, nf}; double *rad[2] = {rr, rf};
    for (int s = 0; s < 2; s++)
        for (long i = 0; i < ns[s]; i++) {
            long c = 0;
            for (long j = 0; j < ns[s]; j++) {
                if (j == i) continue;
                double v = 0;
                for (int a = 0; a < d; a++) { double t = (double)sets[s][i * d + a] - sets[s][j * d + a]; v += t * t; }
                tmp[c++] = v;
            }
            for (int q = 0; q < k; q++) // selection sort of the first k
                for (long j = q + 1; j < c; j++) if (tmp[j] < tmp[q]) { double t = tmp[j]; tmp[j] = tmp[q]; tmp[q] = t; }
            rad[s][i] = tmp[k - 1];
        }
    long np = 0, nrc = 0;
    for (long j = 0; j < nf; j++) {
        int in = 0;
        for (long i = 0; i < nr && !in; i++) {
            double v = 0;
            for (int a = 0; a < d; a++) { double t = (double)fake[j * d + a] - real[i * d + a]; v += t * t; }
            in = v <= rr[i];
        }
        np += in;
    }
    for (long i = 0; i < nr; i++) {
        int in = 0;
        for (long j = 0; j < nf && !in; j++) {
            double v = 0;
            for (int a = 0; a < d; a++) { double t = (double)fake[j * d + a] - real[i * d + a]; v += t * t; }
            in = v <= rf[j];
        }
        nrc += in;
    }
    *p = (double)np / nf; *rc = (double)nrc / nr;
    free(rr); free(rf); free(tmp);
}

static void test_pr(void) {
    Rng r; rng_init(&r, 8, 0);
    const int d = 4;
    // disjoint, far apart
    const long n = 300;
    float *a = malloc(sizeof(float) * 400 * d), *b = malloc(sizeof(float) * 400 * d);
    for (long i = 0; i < n * d; i++) { a[i] = rng_normal(&r); b[i] = 100 + rng_normal(&r); }
    double p, rc;
    precision_recall(a, n, b, n, d, 3, &p, &rc);
    CHECK(p == 0 && rc == 0, "disjoint PR %g %g", p, rc);
    // 4 real modes on a 2-D grid (50 apart), the generated set covers 2 of them
    const long nr = 2000, nf = 1000;
    float *real = malloc(sizeof(float) * nr * 2), *fake = malloc(sizeof(float) * nf * 2);
    for (long i = 0; i < nr; i++)
        for (int c = 0; c < 2; c++) real[i * 2 + c] = 50.0f * ((i % 4) >> c & 1) + rng_normal(&r);
    for (long i = 0; i < nf; i++)
        for (int c = 0; c < 2; c++) fake[i * 2 + c] = 50.0f * ((i % 2) >> c & 1) + rng_normal(&r);
    precision_recall(real, nr, fake, nf, 2, 3, &p, &rc);
    CHECK(p >= 0.97 && rc >= 0.46 && rc <= 0.5, "half the modes: precision %g recall %g", p, rc);
    // small explicit blocks (rows not dividing n) give exactly the same counts
    double pb, rb;
    precision_recall_blocked(real, nr, fake, nf, 2, 3, 37, &pb, &rb);
    CHECK(pb == p && rb == rc, "blocked PR %g %g vs %g %g", pb, rb, p, rc);
    precision_recall_blocked(real, nr, fake, nf, 2, 3, 1, &pb, &rb);
    CHECK(pb == p && rb == rc, "1-row blocks PR %g %g vs %g %g", pb, rb, p, rc);
    // against a brute-force reference in double, on overlapping sets (many borderline cases), k = 1 and 5
    const long m1 = 400, m2 = 300;
    for (long i = 0; i < m1 * d; i++) a[i] = rng_normal(&r);
    for (long i = 0; i < m2 * d; i++) b[i] = 0.7f + 1.3f * rng_normal(&r);
    for (int k = 1; k <= 5; k += 4) {
        double pn, rn;
        naive_pr(a, m1, b, m2, d, k, &pn, &rn);
        precision_recall_blocked(a, m1, b, m2, d, k, 50, &p, &rc);
        CHECK(fabs(p - pn) * m2 <= 1 && fabs(rc - rn) * m1 <= 1 && p > 0.3 && p < 1 && rc > 0.3 && rc < 1,
              "k=%d PR %g %g vs naive %g %g", k, p, rc, pn, rn);
    }
    free(a); free(b); free(real); free(fake);
}

// ---- errors --------------------------------------------------------------------------------------
static int exits_with_error(void (*f)(void)) {
    char msg[4096];
    return run_in_child(f, msg, sizeof msg) == 1;
}
static void bad_k(void) { float x[8] = {0}; double p, r; precision_recall(x, 2, x, 2, 4, 2, &p, &r); }
static void bad_cov_n(void) { FeatStats s; featstats_init(&s, 3); float x[3] = {1, 2, 3}; featstats_add(&s, x, 1); double m[3], c[9]; featstats_mean_cov(&s, m, c); }
static void bad_nan(void) { FeatStats s; featstats_init(&s, 2); float x[2] = {1, NAN}; featstats_add(&s, x, 1); }
static void bad_kid(void) { float x[4] = {0}; double m, s; kernel_inception_distance(x, 1, x, 1, 4, 10, 100, 0, &m, &s); }

static void test_errors(void) {
    CHECK(exits_with_error(bad_k), "k >= n is a user error");
    CHECK(exits_with_error(bad_cov_n), "covariance of 1 sample is a user error");
    CHECK(exits_with_error(bad_nan), "NaN features are a user error");
    CHECK(exits_with_error(bad_kid), "KID subsets of 1 are a user error");
}

int main(void) {
    test_fd_self();
    test_fd_diagonal();
    test_fd_commuting();
    test_fd_noncommuting();
    test_fd_sampling_and_batches();
    test_fd_singular();
    test_kid();
    test_pr();
    test_errors();
    TEST_MAIN_END();
}
