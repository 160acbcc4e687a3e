// FID / KID / precision-recall numerics; see metrics.h for the definitions.
#include "eval/metrics.h"
#include "common.h"
#include "rng.h"
#include <cblas.h>
#include <lapacke.h>
#include <float.h>
#include <math.h>
#include <string.h>

// ---- running moments ---------------------------------------------------------------------------
void featstats_init(FeatStats *s, int dim) {
    if (dim < 1) ddm_fatal("feature statistics need a dimension >= 1 (got %d)", dim);
    s->dim = dim;
    s->n = 0;
    s->sum = xcalloc((size_t)dim, sizeof(double));
    s->outer = xcalloc((size_t)dim * dim, sizeof(double));
}

void featstats_free(FeatStats *s) {
    free(s->sum);
    free(s->outer);
    s->sum = s->outer = NULL;
    s->n = 0;
}

void featstats_add(FeatStats *s, const float *feats, int n) {
    if (n <= 0) return;
    const int d = s->dim;
    // Rows per chunk: about 4M doubles (32 MB) of float64 copy, at least one row.
    long chunk = (4L << 20) / d;
    if (chunk < 1) chunk = 1;
    if (chunk > n) chunk = n;
    double *buf = xmalloc((size_t)chunk * d * sizeof(double));
    for (long r0 = 0; r0 < n; r0 += chunk) {
        long rows = n - r0 < chunk ? n - r0 : chunk;
        const float *src = feats + (size_t)r0 * d;
        for (long i = 0; i < rows * d; i++) {
            if (!isfinite(src[i]))
                ddm_fatal("feature statistics: feature %ld of sample %ld is %g (NaN/Inf in the features)",
                          i % d, s->n + r0 + i / d, (double)src[i]);
            buf[i] = src[i];
        }
        for (long i = 0; i < rows; i++)
            for (int a = 0; a < d; a++) s->sum[a] += buf[(size_t)i * d + a];
        // outer (upper triangle) += buf^T buf
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, (int)rows, 1.0, buf, d, 1.0, s->outer, d);
    }
    s->n += n;
    free(buf);
}

void featstats_mean_cov(const FeatStats *s, double *mean, double *cov) {
    const int d = s->dim;
    if (s->n < 2) ddm_fatal("a covariance needs at least 2 samples (got %ld)", s->n);
    const double n = (double)s->n;
    for (int a = 0; a < d; a++) mean[a] = s->sum[a] / n;
    for (int a = 0; a < d; a++)
        for (int b = a; b < d; b++) {
            double c = (s->outer[(size_t)a * d + b] - s->sum[a] * s->sum[b] / n) / (n - 1);
            cov[(size_t)a * d + b] = cov[(size_t)b * d + a] = c;
        }
}

int featstats_warn_if_singular(const FeatStats *s, const char *what) {
    if (s->n > s->dim) return 0;
    fprintf(stderr,
            "ddm: warning: %s: %ld samples of %d-dimensional features: the covariance is singular (rank <= N-1 = %ld "
            "< %d), so the Frechet distance is dominated by the estimate rather than by the distributions; use more "
            "samples: at least %d (dim + 1), better >= %d (10x dim), or a lower-dimensional feature; computing it "
            "anyway\n",
            what ? what : "features", s->n, s->dim, s->n - 1, s->dim, s->dim + 1, 10 * s->dim);
    return 1;
}

// ---- Frechet distance --------------------------------------------------------------------------
// Eigenvalues of a symmetric matrix below dim * eps * max|l| are round-off (the backward error of
// the eigensolver); treating them as 0 keeps sqrt() from turning 1e-16 noise into 1e-8 errors.
static double eig_tolerance(const double *w, int dim) {
    double mx = 0;
    for (int k = 0; k < dim; k++) mx = fmax(mx, fabs(w[k]));
    return dim * DBL_EPSILON * mx;
}

double frechet_distance(const double *mu1, const double *cov1, const double *mu2, const double *cov2,
                        int dim) {
    if (dim < 1) ddm_fatal("frechet_distance: dimension must be >= 1 (got %d)", dim);
    const size_t dd = (size_t)dim * dim;
    double dmu = 0, tr1 = 0, tr2 = 0;
    for (int a = 0; a < dim; a++) {
        double t = mu1[a] - mu2[a];
        dmu += t * t;
        tr1 += cov1[(size_t)a * dim + a];
        tr2 += cov2[(size_t)a * dim + a];
    }
    for (size_t i = 0; i < dd; i++)
        if (!isfinite(cov1[i]) || !isfinite(cov2[i]))
            ddm_fatal("frechet_distance: the covariance contains NaN/Inf");
    if (!isfinite(dmu)) ddm_fatal("frechet_distance: the mean contains NaN/Inf");

    double *u = xmalloc(dd * sizeof(double)), *w = xmalloc((size_t)dim * sizeof(double));
    double *t = xmalloc(dd * sizeof(double)), *m = xmalloc(dd * sizeof(double));
    memcpy(u, cov1, dd * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', dim, u, dim, w);
    if (info != 0) ddm_fatal("frechet_distance: eigendecomposition of the first covariance failed (info %d)", (int)info);
    // W = U L^{1/2}: scale column k of U by sqrt(l_k), l_k below the round-off level set to 0.
    double tol = eig_tolerance(w, dim);
    for (int k = 0; k < dim; k++) w[k] = w[k] > tol ? sqrt(w[k]) : 0;
    for (int i = 0; i < dim; i++)
        for (int k = 0; k < dim; k++) u[(size_t)i * dim + k] *= w[k];
    // M = W^T S2 W
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, dim, dim, dim, 1.0, cov2, dim, u, dim, 0.0, t, dim);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dim, dim, dim, 1.0, u, dim, t, dim, 0.0, m, dim);
    for (int i = 0; i < dim; i++)
        for (int j = i + 1; j < dim; j++) {
            double v = 0.5 * (m[(size_t)i * dim + j] + m[(size_t)j * dim + i]);
            m[(size_t)i * dim + j] = m[(size_t)j * dim + i] = v;
        }
    info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', dim, m, dim, w);
    if (info != 0) ddm_fatal("frechet_distance: eigendecomposition of S1^1/2 S2 S1^1/2 failed (info %d)", (int)info);
    double trsqrt = 0;
    tol = eig_tolerance(w, dim);
    for (int k = 0; k < dim; k++) trsqrt += w[k] > tol ? sqrt(w[k]) : 0;
    free(u); free(w); free(t); free(m);
    double fd = dmu + tr1 + tr2 - 2 * trsqrt;
    return fd > 0 ? fd : 0;
}

// ---- KID ---------------------------------------------------------------------------------------
// Draws m distinct indices of [0, n) into out (partial Fisher-Yates on perm, which must hold a
// permutation of [0, n); it is left as some other permutation).
static void draw_subset(Rng *r, long *perm, long n, long m, long *out) {
    for (long i = 0; i < m; i++) {
        long j = i + (long)(rng_u64(r) % (uint64_t)(n - i));
        long tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
        out[i] = perm[i];
    }
}

static inline double poly_kernel(double dot, double inv_dim) {
    double v = dot * inv_dim + 1.0;
    return v * v * v;
}

void kernel_inception_distance(const float *f1, long n1, const float *f2, long n2, int dim, int n_subsets,
                               int subset_size, uint64_t seed, double *mean, double *std) {
    if (dim < 1) ddm_fatal("KID: dimension must be >= 1 (got %d)", dim);
    if (n_subsets < 1) ddm_fatal("KID: need at least 1 subset (got %d)", n_subsets);
    long m = subset_size;
    if (m > n1) m = n1;
    if (m > n2) m = n2;
    if (m < 2) ddm_fatal("KID: subsets need at least 2 samples (subset size %d, sets of %ld and %ld)",
                         subset_size, n1, n2);
    const double inv_dim = 1.0 / dim;
    long *perm1 = xmalloc((size_t)n1 * sizeof(long)), *perm2 = xmalloc((size_t)n2 * sizeof(long));
    long *idx1 = xmalloc((size_t)m * sizeof(long)), *idx2 = xmalloc((size_t)m * sizeof(long));
    double *x = xmalloc((size_t)m * dim * sizeof(double)), *y = xmalloc((size_t)m * dim * sizeof(double));
    double *g = xmalloc((size_t)m * m * sizeof(double));
    double *mmd = xmalloc((size_t)n_subsets * sizeof(double));
    for (int s = 0; s < n_subsets; s++) {
        Rng r;
        rng_init(&r, seed, (uint64_t)s);
        for (long i = 0; i < n1; i++) perm1[i] = i;
        for (long i = 0; i < n2; i++) perm2[i] = i;
        draw_subset(&r, perm1, n1, m, idx1);
        draw_subset(&r, perm2, n2, m, idx2);
        for (long i = 0; i < m; i++)
            for (int a = 0; a < dim; a++) {
                double v1 = f1[(size_t)idx1[i] * dim + a], v2 = f2[(size_t)idx2[i] * dim + a];
                if (!isfinite(v1) || !isfinite(v2)) ddm_fatal("KID: the features contain NaN/Inf");
                x[(size_t)i * dim + a] = v1;
                y[(size_t)i * dim + a] = v2;
            }
        double sxx = 0, syy = 0, sxy = 0;
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, dim, 1.0, x, dim, 0.0, g, (int)m);
        for (long i = 0; i < m; i++)
            for (long j = i + 1; j < m; j++) sxx += poly_kernel(g[(size_t)i * m + j], inv_dim);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, dim, 1.0, y, dim, 0.0, g, (int)m);
        for (long i = 0; i < m; i++)
            for (long j = i + 1; j < m; j++) syy += poly_kernel(g[(size_t)i * m + j], inv_dim);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)m, dim, 1.0, x, dim, y, dim, 0.0, g,
                    (int)m);
        for (size_t i = 0; i < (size_t)m * m; i++) sxy += poly_kernel(g[i], inv_dim);
        double md = (double)m;
        mmd[s] = 2 * (sxx + syy) / (md * (md - 1)) - 2 * sxy / (md * md);
    }
    double mu = 0, var = 0;
    for (int s = 0; s < n_subsets; s++) mu += mmd[s];
    mu /= n_subsets;
    for (int s = 0; s < n_subsets; s++) var += (mmd[s] - mu) * (mmd[s] - mu);
    *mean = mu;
    *std = sqrt(var / n_subsets);
    free(perm1); free(perm2); free(idx1); free(idx2); free(x); free(y); free(g); free(mmd);
}

// ---- improved precision / recall ---------------------------------------------------------------
static double *row_norms(const float *x, long n, int dim) {
    double *nr = xmalloc((size_t)n * sizeof(double));
    for (long i = 0; i < n; i++) {
        double s = 0;
        for (int a = 0; a < dim; a++) s += (double)x[(size_t)i * dim + a] * x[(size_t)i * dim + a];
        nr[i] = s;
    }
    return nr;
}

// Distance blocks smaller than this are scanned by one thread (a parallel region costs more).
#define PAR_MIN (1L << 18)

static long auto_block(long block, long rows, long cols) {
    if (block <= 0) block = (8L << 20) / (cols > 0 ? cols : 1); // ~32 MB of float distances
    if (block < 1) block = 1;
    return block < rows ? block : rows;
}

// Squared k-th nearest-neighbour distance of each row of x within x (itself excluded by index).
static double *knn_radii(const float *x, long n, int dim, int k, long block, const double *nrm) {
    double *rad = xmalloc((size_t)n * sizeof(double));
    long b = auto_block(block, n, n);
    float *g = xmalloc((size_t)b * n * sizeof(float));
    for (long r0 = 0; r0 < n; r0 += b) {
        long rows = n - r0 < b ? n - r0 : b;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n, dim, 1.0f, x + (size_t)r0 * dim,
                    dim, x, dim, 0.0f, g, (int)n);
#pragma omp parallel if (rows * n >= PAR_MIN)
        {
            double *best = xmalloc((size_t)k * sizeof(double)); // k smallest so far, ascending
#pragma omp for schedule(static)
            for (long i = 0; i < rows; i++) {
                long self = r0 + i;
                for (int q = 0; q < k; q++) best[q] = INFINITY;
                const float *gi = g + (size_t)i * n;
                for (long j = 0; j < n; j++) {
                    if (j == self) continue;
                    double d = nrm[self] + nrm[j] - 2.0 * gi[j];
                    if (d < 0) d = 0;
                    if (d >= best[k - 1]) continue;
                    int q = k - 1;
                    while (q > 0 && best[q - 1] > d) { best[q] = best[q - 1]; q--; }
                    best[q] = d;
                }
                rad[self] = best[k - 1];
            }
            free(best);
        }
    }
    free(g);
    return rad;
}

void precision_recall_blocked(const float *real, long n_real, const float *fake, long n_fake, int dim, int k,
                              long block, double *precision, double *recall) {
    if (dim < 1) ddm_fatal("precision/recall: dimension must be >= 1 (got %d)", dim);
    if (k < 1) ddm_fatal("precision/recall: k must be >= 1 (got %d)", k);
    if (n_real <= k || n_fake <= k)
        ddm_fatal("precision/recall: k = %d needs more than k samples in each set (real %ld, generated %ld)", k,
                  n_real, n_fake);
    for (long i = 0; i < n_real * dim; i++)
        if (!isfinite(real[i])) ddm_fatal("precision/recall: the real features contain NaN/Inf");
    for (long i = 0; i < n_fake * dim; i++)
        if (!isfinite(fake[i])) ddm_fatal("precision/recall: the generated features contain NaN/Inf");

    double *nr = row_norms(real, n_real, dim), *nf = row_norms(fake, n_fake, dim);
    double *rr = knn_radii(real, n_real, dim, k, block, nr);
    double *rf = knn_radii(fake, n_fake, dim, k, block, nf);
    unsigned char *fake_in = xcalloc((size_t)n_fake, 1), *real_in = xcalloc((size_t)n_real, 1);
    long b = auto_block(block, n_fake, n_real);
    float *g = xmalloc((size_t)b * n_real * sizeof(float));
    for (long r0 = 0; r0 < n_fake; r0 += b) {
        long rows = n_fake - r0 < b ? n_fake - r0 : b;
        // g[j, i] = fake_{r0+j} . real_i
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n_real, dim, 1.0f,
                    fake + (size_t)r0 * dim, dim, real, dim, 0.0f, g, (int)n_real);
        // precision: rows (fake) against every real radius
#pragma omp parallel for schedule(static) if (rows * n_real >= PAR_MIN)
        for (long j = 0; j < rows; j++) {
            const float *gj = g + (size_t)j * n_real;
            double nj = nf[r0 + j];
            for (long i = 0; i < n_real; i++) {
                double d = nj + nr[i] - 2.0 * gj[i];
                if (d <= rr[i]) { fake_in[r0 + j] = 1; break; }
            }
        }
        // recall: columns (real) against the radii of this block of fake samples
#pragma omp parallel for schedule(static) if (rows * n_real >= PAR_MIN)
        for (long i = 0; i < n_real; i++) {
            if (real_in[i]) continue;
            for (long j = 0; j < rows; j++) {
                double d = nf[r0 + j] + nr[i] - 2.0 * g[(size_t)j * n_real + i];
                if (d <= rf[r0 + j]) { real_in[i] = 1; break; }
            }
        }
    }
    long np = 0, nrc = 0;
    for (long j = 0; j < n_fake; j++) np += fake_in[j];
    for (long i = 0; i < n_real; i++) nrc += real_in[i];
    *precision = (double)np / n_fake;
    *recall = (double)nrc / n_real;
    free(nr); free(nf); free(rr); free(rf); free(fake_in); free(real_in); free(g);
}

void precision_recall(const float *real, long n_real, const float *fake, long n_fake, int dim, int k,
                      double *precision, double *recall) {
    precision_recall_blocked(real, n_real, fake, n_fake, dim, k, 0, precision, recall);
}
