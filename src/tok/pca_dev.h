// The PCA tokenizer on a device (ops.h): encode, decode and the full-basis projections of tok/pca.h as ops
// (patchify, add_bias, gemm_fp32, scale_cols, patchify_bwd), so that the l-DAE objective runs where the model
// does. The host functions of tok/pca.h are these on the CPU table. Images [n, C, H, W] and latents [n, T, k]
// are device memory of the table the tokenizer was put on.
#pragma once
#include "ops/ops.h"
#include "tok/pca.h"

typedef struct {
    const Ops *ops;
    const Pca *pca;          // borrowed (host)
    float *basis;            // [D, D] rows = components
    float *mean, *neg_mean;  // [D], or NULL if not centred
    float *whiten, *unwhiten;   // [d]: sqrt(eigenvalue) (floored) and 1 / it, or NULL if not whitened
} PcaDev;

PcaDev *pca_dev_create(const Ops *ops, const Pca *p);
void pca_dev_free(PcaDev *pd);
// latents [n, T, d] = V (x - mean) per patch (divided by sqrt(eig) if whitened). Fatal unless the images fit.
void pca_dev_encode(const PcaDev *pd, const float *imgs, int n, int H, int W, float *latents);
// imgs = V^T z (z * sqrt(eig) if whitened) + mean per patch.
void pca_dev_decode(const PcaDev *pd, const float *latents, int n, int H, int W, float *imgs);
// coords [n, T, D] = V_full (x - mean) per patch, no whitening.
void pca_dev_project_full(const PcaDev *pd, const float *imgs, int n, int H, int W, float *coords);
// coords [n, T, D] = V_full x per patch, no mean, no whitening (linear in x), and its transpose.
void pca_dev_project_full_nomean(const PcaDev *pd, const float *imgs, int n, int H, int W, float *coords);
void pca_dev_unproject_full_nomean(const PcaDev *pd, const float *coords, int n, int H, int W, float *imgs);
