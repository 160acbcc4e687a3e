#include "tok/pca_dev.h"
#include <stdlib.h>
#include "common.h"

PcaDev *pca_dev_create(const Ops *ops, const Pca *p) {
    PcaDev *pd = xcalloc(1, sizeof *pd);
    pd->ops = ops;
    pd->pca = p;
    const int D = p->D, d = p->d;
    pd->basis = ops_alloc_f32(ops, (size_t)D * D);
    ops_upload_f32(ops, pd->basis, p->basis, (size_t)D * D);
    float *h = xmalloc((size_t)D * sizeof(float));
    if (p->centered) {
        pd->mean = ops_alloc_f32(ops, D);
        pd->neg_mean = ops_alloc_f32(ops, D);
        ops_upload_f32(ops, pd->mean, p->mean, D);
        for (int i = 0; i < D; i++) h[i] = -p->mean[i];   // x + (-m) is exactly x - m
        ops_upload_f32(ops, pd->neg_mean, h, D);
    }
    if (p->whitened) {
        pd->whiten = ops_alloc_f32(ops, d);
        pd->unwhiten = ops_alloc_f32(ops, d);
        for (int k = 0; k < d; k++) h[k] = pca_whiten_scale(p, k);
        ops_upload_f32(ops, pd->whiten, h, d);
        for (int k = 0; k < d; k++) h[k] = 1.0f / pca_whiten_scale(p, k);
        ops_upload_f32(ops, pd->unwhiten, h, d);
    }
    free(h);
    return pd;
}

void pca_dev_free(PcaDev *pd) {
    if (!pd) return;
    const Ops *o = pd->ops;
    o->free(pd->basis); o->free(pd->mean); o->free(pd->neg_mean); o->free(pd->whiten); o->free(pd->unwhiten);
    free(pd);
}

// Images per pass (bounded scratch, as many as fit in 2^22 floats of patches).
static int batch_images(int T, int D) {
    long per = (long)T * D;
    long b = (1L << 22) / (per > 0 ? per : 1);
    return b < 1 ? 1 : (int)b;
}

// out [n, T, k] = (patches of imgs, minus the mean if sub_mean) V_k^T
static void project(const PcaDev *pd, const float *imgs, int n, int H, int W, int k, int sub_mean, float *out) {
    const Ops *o = pd->ops;
    const Pca *p = pd->pca;
    const int C = p->channels, P = p->patch, D = p->D, T = (H / P) * (W / P);
    const size_t img_size = (size_t)C * H * W;
    int bi = batch_images(T, D);
    float *x = ops_alloc_f32(o, (size_t)(bi < n ? bi : n) * T * D);
    for (int i0 = 0; i0 < n; i0 += bi) {
        int nb = n - i0 < bi ? n - i0 : bi;
        o->patchify(x, imgs + img_size * i0, nb, C, H, W, P);
        if (sub_mean && pd->neg_mean) o->add_bias(x, pd->neg_mean, nb * T, D);
        o->gemm_fp32(0, 1, nb * T, k, D, 1.0f, x, D, pd->basis, D, 0.0f, out + (size_t)i0 * T * k, k);
    }
    o->free(x);
}

// imgs = patches (coords [n, T, k] V_k, plus the mean if add_mean) scattered back; coords scaled by `scale` [k]
// first when not NULL (on a copy).
static void unproject(const PcaDev *pd, const float *coords, int n, int H, int W, int k, const float *scale,
                      int add_mean, float *imgs) {
    const Ops *o = pd->ops;
    const Pca *p = pd->pca;
    const int C = p->channels, P = p->patch, D = p->D, T = (H / P) * (W / P);
    const size_t img_size = (size_t)C * H * W;
    int bi = batch_images(T, D), cap = bi < n ? bi : n;
    float *x = ops_alloc_f32(o, (size_t)cap * T * D), *z = scale ? ops_alloc_f32(o, (size_t)cap * T * k) : NULL;
    for (int i0 = 0; i0 < n; i0 += bi) {
        int nb = n - i0 < bi ? n - i0 : bi;
        const float *zin = coords + (size_t)i0 * T * k;
        if (z) {
            o->copy(z, zin, (size_t)nb * T * k);
            o->scale_cols(z, scale, (long)nb * T, k);
            zin = z;
        }
        o->gemm_fp32(0, 0, nb * T, D, k, 1.0f, zin, k, pd->basis, D, 0.0f, x, D);
        if (add_mean && pd->mean) o->add_bias(x, pd->mean, nb * T, D);
        o->patchify_bwd(imgs + img_size * i0, x, nb, C, H, W, P);
    }
    o->free(x);
    o->free(z);
}

void pca_dev_encode(const PcaDev *pd, const float *imgs, int n, int H, int W, float *latents) {
    const Pca *p = pd->pca;
    pca_check_images(p, p->channels, H, W, "PCA encode");
    project(pd, imgs, n, H, W, p->d, 1, latents);
    if (pd->unwhiten) pd->ops->scale_cols(latents, pd->unwhiten, (long)n * (H / p->patch) * (W / p->patch), p->d);
}

void pca_dev_decode(const PcaDev *pd, const float *latents, int n, int H, int W, float *imgs) {
    const Pca *p = pd->pca;
    pca_check_images(p, p->channels, H, W, "PCA decode");
    unproject(pd, latents, n, H, W, p->d, pd->whiten, 1, imgs);
}

void pca_dev_project_full(const PcaDev *pd, const float *imgs, int n, int H, int W, float *coords) {
    pca_check_images(pd->pca, pd->pca->channels, H, W, "PCA projection");
    project(pd, imgs, n, H, W, pd->pca->D, 1, coords);
}

void pca_dev_project_full_nomean(const PcaDev *pd, const float *imgs, int n, int H, int W, float *coords) {
    pca_check_images(pd->pca, pd->pca->channels, H, W, "PCA projection");
    project(pd, imgs, n, H, W, pd->pca->D, 0, coords);
}

void pca_dev_unproject_full_nomean(const PcaDev *pd, const float *coords, int n, int H, int W, float *imgs) {
    pca_check_images(pd->pca, pd->pca->channels, H, W, "PCA unprojection");
    unproject(pd, coords, n, H, W, pd->pca->D, NULL, 0, imgs);
}
