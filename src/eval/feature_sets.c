#include "eval/feature_sets.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "eval/metrics.h"
#include "rng.h"

float *dataset_draw(const Dataset *d, int n, uint64_t seed) {
    if (n > d->n) ddm_fatal("asked for %d images of a split that holds %d", n, d->n);
    long per = (long)d->c * d->h * d->w;
    int *perm = xmalloc(d->n * sizeof(int));
    Rng r;
    rng_init(&r, seed, 0xE7A1);
    rng_permutation(&r, perm, d->n);
    float *x = xmalloc((size_t)n * per * sizeof(float));
    for (int i = 0; i < n; i++) memcpy(x + i * per, d->images + (long)perm[i] * per, per * sizeof(float));
    free(perm);
    return x;
}

float *classifier_features_all(Classifier *cls, const float *imgs, int n) {
    enum { CHUNK = 500 };
    int dim = classifier_feature_dim(cls);
    long per = (long)cls->channels * cls->height * cls->width;
    float *f = xmalloc((size_t)n * dim * sizeof(float));
    for (int s = 0; s < n; s += CHUNK)
        classifier_features(cls, imgs + s * per, n - s < CHUNK ? n - s : CHUNK, f + (long)s * dim);
    return f;
}

double fd_of_features(const float *f1, int n1, const float *f2, int n2, int dim, const char *what) {
    FeatStats a, b;
    featstats_init(&a, dim);
    featstats_init(&b, dim);
    featstats_add(&a, f1, n1);
    featstats_add(&b, f2, n2);
    if (what) featstats_warn_if_singular(&b, what);
    double *mu1 = xmalloc(dim * sizeof(double)), *mu2 = xmalloc(dim * sizeof(double));
    double *c1 = xmalloc((size_t)dim * dim * sizeof(double)), *c2 = xmalloc((size_t)dim * dim * sizeof(double));
    featstats_mean_cov(&a, mu1, c1);
    featstats_mean_cov(&b, mu2, c2);
    double fd = frechet_distance(mu1, c1, mu2, c2, dim);
    featstats_free(&a);
    featstats_free(&b);
    free(mu1); free(mu2); free(c1); free(c2);
    return fd;
}
