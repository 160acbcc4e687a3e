// Patch-wise PCA tokenizer: fit (covariance by dsyrk on batches of sampled patches, LAPACKE_dsyevd),
// encode / decode / full-basis projection (tok/pca_dev.c on the CPU table), safetensors I/O.
#include "tok/pca.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "io/safetensors.h"
#include "rng.h"
#include "tok/pca_dev.h"

#define PCA_FORMAT "ddm-pca-1"
#define PCA_RNG_STREAM 0x70636166ull // "pcaf": the patch-sampling stream of pca_fit

// Patch (py, px) of image img [C, H, W] -> x [D] in (c, i, j) order.
static void gather_patch(const float *img, int C, int H, int W, int p, int py, int px, float *x) {
    (void)H;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < p; i++) {
            const float *row = img + ((size_t)c * H + (size_t)py * p + i) * W + (size_t)px * p;
            memcpy(x + ((size_t)c * p + i) * p, row, (size_t)p * sizeof(float));
        }
}

// The whitening scale of component k: sqrt(eigenvalue), floored so that a zero-variance direction
// does not divide by zero.
float pca_whiten_scale(const Pca *p, int k) {
    double floor_ = 1e-12 * p->eigenvalues[0];
    if (floor_ < 1e-30) floor_ = 1e-30;
    double e = p->eigenvalues[k] > floor_ ? p->eigenvalues[k] : floor_;
    return (float)sqrt(e);
}

static void check_size(int H, int W, int patch, const char *what) {
    if (H <= 0 || W <= 0) ddm_fatal("%s: image size %dx%d is empty", what, H, W);
    if (H % patch || W % patch)
        ddm_fatal("%s: image size %dx%d is not divisible by the patch size %d", what, H, W, patch);
}

void pca_check_images(const Pca *p, int C, int H, int W, const char *what) {
    if (C != p->channels)
        ddm_fatal("%s: the PCA tokenizer was fitted on %d-channel images (patch %d x %d x %d), the images have %d channel%s",
                  what, p->channels, p->patch, p->patch, p->channels, C, C == 1 ? "" : "s");
    check_size(H, W, p->patch, what);
}

Pca *pca_fit(const float *imgs, int n, int C, int H, int W, int patch, int d, long n_patches, int center, int whiten,
             uint64_t seed) {
    if (patch < 1) ddm_fatal("PCA: patch size %d, expected at least 1", patch);
    if (C < 1) ddm_fatal("PCA: %d channels, expected at least 1", C);
    if (n < 1) ddm_fatal("PCA: no images to fit on");
    long Dl = (long)patch * patch * C;
    if (Dl > 16384) ddm_fatal("PCA: patch dimension D = %ld (patch %d x %d x %d) is too large (at most 16384)", Dl, patch, patch, C);
    int D = (int)Dl;
    if (d < 1) ddm_fatal("PCA: d = %d, the tokenizer needs at least one component", d);
    if (d > D) ddm_fatal("d = %d is larger than the patch dimension D = %d (patch %d x %d x %d)", d, D, patch, patch, C);
    if (n_patches < 2) ddm_fatal("PCA: %ld sampled patches, at least 2 are needed", n_patches);
    if (d > n_patches) ddm_fatal("d = %d is larger than the number of sampled patches (%ld)", d, n_patches);
    check_size(H, W, patch, "PCA");
    const int gw = W / patch, T = (H / patch) * gw;
    const size_t img_size = (size_t)C * H * W;

    enum { B = 1024 };
    float *xf = xmalloc((size_t)D * sizeof(float));
    double *xb = xmalloc((size_t)B * D * sizeof(double));
    double *mean = xcalloc(D, sizeof(double));
    Rng r;
    if (center) { // pass 1: the mean of the sampled patches
        rng_init(&r, seed, PCA_RNG_STREAM);
        for (long k = 0; k < n_patches; k++) {
            int img = rng_int(&r, n), pos = rng_int(&r, T);
            gather_patch(imgs + img_size * img, C, H, W, patch, pos / gw, pos % gw, xf);
            for (int i = 0; i < D; i++) mean[i] += xf[i];
        }
        for (int i = 0; i < D; i++) mean[i] /= (double)n_patches;
    }
    // pass 2: the same patches again (same stream), covariance += Xb^T Xb per batch (upper triangle)
    double *cov = xcalloc((size_t)D * D, sizeof(double));
    rng_init(&r, seed, PCA_RNG_STREAM);
    for (long k0 = 0; k0 < n_patches; k0 += B) {
        int nb = (int)(n_patches - k0 < B ? n_patches - k0 : B);
        for (int b = 0; b < nb; b++) {
            int img = rng_int(&r, n), pos = rng_int(&r, T);
            gather_patch(imgs + img_size * img, C, H, W, patch, pos / gw, pos % gw, xf);
            for (int i = 0; i < D; i++) xb[(size_t)b * D + i] = (double)xf[i] - mean[i];
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, nb, 1.0, xb, D, 1.0, cov, D);
    }
    double norm = 1.0 / (double)(center ? n_patches - 1 : n_patches);
    for (size_t i = 0; i < (size_t)D * D; i++) cov[i] *= norm;
    double *w = xmalloc((size_t)D * sizeof(double));
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', D, cov, D, w);
    if (info != 0) ddm_fatal("PCA: the eigendecomposition failed (LAPACKE_dsyevd info = %d)", (int)info);

    Pca *p = xcalloc(1, sizeof *p);
    p->patch = patch; p->channels = C; p->D = D; p->d = d;
    p->centered = center ? 1 : 0; p->whitened = whiten ? 1 : 0;
    p->mean = xmalloc((size_t)D * sizeof(float));
    p->basis = xmalloc((size_t)D * D * sizeof(float));
    p->eigenvalues = xmalloc((size_t)D * sizeof(double));
    for (int i = 0; i < D; i++) p->mean[i] = (float)mean[i];
    // dsyevd: ascending eigenvalues, eigenvector k in column k of the row-major result.
    for (int r_ = 0; r_ < D; r_++) {
        int k = D - 1 - r_;
        p->eigenvalues[r_] = w[k] > 0 ? w[k] : 0.0;
        int arg = 0;
        double best = -1;
        for (int i = 0; i < D; i++) {
            double a = fabs(cov[(size_t)i * D + k]);
            if (a > best) { best = a; arg = i; } // first index on ties
        }
        double sgn = cov[(size_t)arg * D + k] < 0 ? -1.0 : 1.0;
        for (int i = 0; i < D; i++) p->basis[(size_t)r_ * D + i] = (float)(sgn * cov[(size_t)i * D + k]);
    }
    free(w); free(cov); free(mean); free(xb); free(xf);
    return p;
}

// The host tokenizer is the device one on the CPU table (whose device memory is host memory).
#define ON_CPU(call)                                   \
    do {                                               \
        PcaDev *pd_ = pca_dev_create(&ops_cpu, p);     \
        call;                                          \
        pca_dev_free(pd_);                             \
    } while (0)

void pca_encode(const Pca *p, const float *imgs, int n, int H, int W, float *latents) {
    ON_CPU(pca_dev_encode(pd_, imgs, n, H, W, latents));
}

void pca_decode(const Pca *p, const float *latents, int n, int H, int W, float *imgs) {
    ON_CPU(pca_dev_decode(pd_, latents, n, H, W, imgs));
}

void pca_project_full(const Pca *p, const float *imgs, int n, int H, int W, float *coords) {
    ON_CPU(pca_dev_project_full(pd_, imgs, n, H, W, coords));
}

void pca_project_full_nomean(const Pca *p, const float *imgs, int n, int H, int W, float *coords) {
    ON_CPU(pca_dev_project_full_nomean(pd_, imgs, n, H, W, coords));
}

void pca_unproject_full_nomean(const Pca *p, const float *coords, int n, int H, int W, float *imgs) {
    ON_CPU(pca_dev_unproject_full_nomean(pd_, coords, n, H, W, imgs));
}

double pca_explained(const Pca *p, int k) {
    double tot = 0;
    for (int i = 0; i < p->D; i++) tot += p->eigenvalues[i];
    return tot > 0 ? p->eigenvalues[k] / tot : 0.0;
}

void pca_st_add(StWriter *w, const Pca *p, const char *meta_prefix) {
    int64_t s1[1] = {p->D}, s2[2] = {p->D, p->D};   // shapes are copied by st_writer_add
    st_writer_add(w, "pca.mean", ST_F32, 1, s1, p->mean);
    st_writer_add(w, "pca.basis", ST_F32, 2, s2, p->basis);
    st_writer_add(w, "pca.eigenvalues", ST_F64, 1, s1, p->eigenvalues);
    char key[64], buf[32];
    const char *keys[] = {"patch", "channels", "d", "centered", "whitened"};
    int vals[] = {p->patch, p->channels, p->d, p->centered, p->whitened};
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "%s%s", meta_prefix, keys[i]);
        snprintf(buf, sizeof buf, "%d", vals[i]);
        st_writer_meta(w, key, buf);
    }
}

void pca_save(const Pca *p, const char *path) {
    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", PCA_FORMAT);
    pca_st_add(w, p, "");
    st_writer_meta(w, "layout", "patch vector order (c, i, j); basis rows = components, descending eigenvalue");
    st_writer_write(w, path);
    st_writer_free(w);
}

static int meta_int(const StFile *f, const char *prefix, const char *key, int lo, int hi) {
    char k[64];
    snprintf(k, sizeof k, "%s%s", prefix, key);
    const char *v = st_meta(f, k);
    if (!v) ddm_fatal("%s: PCA tokenizer metadata has no \"%s\"", f->path, k);
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        ddm_fatal("%s: PCA tokenizer metadata \"%s\" = '%s', expected an integer in %d..%d", f->path, k, v, lo, hi);
    return (int)x;
}

Pca *pca_st_read(const StFile *f, const char *meta_prefix) {
    const char *path = f->path;
    Pca *p = xcalloc(1, sizeof *p);
    p->patch = meta_int(f, meta_prefix, "patch", 1, 16384);
    p->channels = meta_int(f, meta_prefix, "channels", 1, 16384);
    long D = (long)p->patch * p->patch * p->channels;
    if (D > 16384) ddm_fatal("%s: PCA tokenizer patch dimension %ld is too large", path, D);
    p->D = (int)D;
    p->d = meta_int(f, meta_prefix, "d", 1, p->D);
    p->centered = meta_int(f, meta_prefix, "centered", 0, 1);
    p->whitened = meta_int(f, meta_prefix, "whitened", 0, 1);
    int64_t s1[1] = {D}, s2[2] = {D, D};
    const float *mean = st_get_f32(f, "pca.mean", 1, s1);
    const float *basis = st_get_f32(f, "pca.basis", 2, s2);
    const StTensor *e = st_find(f, "pca.eigenvalues");
    if (!e) ddm_fatal("%s: no tensor 'pca.eigenvalues'", path);
    if (e->dtype != ST_F64 || e->ndim != 1 || e->shape[0] != D)
        ddm_fatal("%s: tensor 'pca.eigenvalues' must be F64 [%ld]", path, D);
    p->mean = xmalloc((size_t)D * sizeof(float));
    p->basis = xmalloc((size_t)D * D * sizeof(float));
    p->eigenvalues = xmalloc((size_t)D * sizeof(double));
    memcpy(p->mean, mean, (size_t)D * sizeof(float));
    memcpy(p->basis, basis, (size_t)D * D * sizeof(float));
    memcpy(p->eigenvalues, e->data, (size_t)D * sizeof(double));
    for (long i = 0; i < D; i++)
        if (!isfinite(p->eigenvalues[i]) || p->eigenvalues[i] < 0 || (i && p->eigenvalues[i] > p->eigenvalues[i - 1]))
            ddm_fatal("%s: 'pca.eigenvalues' must be finite, non-negative and descending (entry %ld)", path, i);
    return p;
}

Pca *pca_load(const char *path) {
    if (!file_exists(path)) ddm_fatal("PCA tokenizer '%s' does not exist", path);
    StFile *f = st_load(path);
    const char *fmt = st_meta(f, "format");
    if (!fmt || strcmp(fmt, PCA_FORMAT) != 0)
        ddm_fatal("%s: not a ddm PCA tokenizer (metadata \"format\" is %s%s%s, expected '" PCA_FORMAT "')", path,
                  fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "");
    Pca *p = pca_st_read(f, "");
    st_free(f);
    return p;
}

void pca_free(Pca *p) {
    if (!p) return;
    free(p->mean);
    free(p->basis);
    free(p->eigenvalues);
    free(p);
}
