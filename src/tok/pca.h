// Patch-wise PCA tokenizer (l-DAE, SPEC §1.2): an image is cut into non-overlapping p x p patches,
// each flattened to a D = p*p*C vector in (c, i, j) order (the layout of the DiT patch-embed conv
// weight [hidden, C, p, p]); a patch is encoded as z = V (x - mean), V the top-d principal components
// of the covariance of many randomly sampled patches. Latents are [n, T, d], T = (H/p)*(W/p) patches
// in row-major order. Whitening (optional) divides each coordinate by sqrt(eigenvalue).
#pragma once
#include <stdint.h>
#include "io/safetensors.h"

typedef struct {
    int patch, channels, D /* p*p*C */, d /* kept */;
    int centered, whitened;
    float *mean;         // [D] (zeros if not centred)
    float *basis;        // [D, D] rows = components, descending variance; V = first d rows
    double *eigenvalues; // [D] descending (clamped at 0)
} Pca;

// Fits on n_patches p x p x C patches drawn at random (image, position) from imgs [n, C, H, W],
// seeded. Covariance in double (centred: divided by n_patches - 1; not centred: the second moment,
// divided by n_patches), eigendecomposition by LAPACKE_dsyevd, components sorted by descending
// eigenvalue, each with its largest-|.| entry positive. Fatal one-line errors for d outside 1..D,
// d > n_patches, n_patches < 2 and an image size not divisible by the patch.
Pca *pca_fit(const float *imgs, int n, int C, int H, int W, int patch, int d, long n_patches, int center, int whiten,
             uint64_t seed);
// Fatal ("<what>: ...") unless images [*, C, H, W] fit the tokenizer: C = its channels, H and W
// divisible by its patch.
void pca_check_images(const Pca *p, int C, int H, int W, const char *what);
// imgs [n, C, H, W] (C = p->channels) -> latents [n, T, d].
void pca_encode(const Pca *p, const float *imgs, int n, int H, int W, float *latents);
// Inverse PCA: latents [n, T, d] -> imgs [n, C, H, W], x = V^T z (z * sqrt(eig) if whitened) + mean.
void pca_decode(const Pca *p, const float *latents, int n, int H, int W, float *imgs);
// Coordinates in the full basis (all D components, no whitening, mean subtracted if centred):
// [n, T, D]; the first d equal pca_encode when not whitened. For the l-DAE loss r = V_full (x0 - xhat)
// pass the difference image and a non-centred view (see pca_project_full_nomean).
void pca_project_full(const Pca *p, const float *imgs, int n, int H, int W, float *coords);
// As pca_project_full but never subtracts the mean: V_full x, linear in x (for residuals).
void pca_project_full_nomean(const Pca *p, const float *imgs, int n, int H, int W, float *coords);
// The transpose of pca_project_full_nomean: coords [n, T, D] -> imgs [n, C, H, W], each patch
// V_full^T c (no mean, no whitening); the inverse of pca_project_full_nomean (V_full is orthonormal).
void pca_unproject_full_nomean(const Pca *p, const float *coords, int n, int H, int W, float *imgs);
// The whitening scale of component k: sqrt(eigenvalue k), floored at sqrt(1e-12 * the largest) (and 1e-15).
float pca_whiten_scale(const Pca *p, int k);
// Fraction of the total variance (sum of all D eigenvalues) in component k.
double pca_explained(const Pca *p, int k);
// safetensors: "pca.mean" F32 [D], "pca.basis" F32 [D, D], "pca.eigenvalues" F64 [D]; metadata
// format "ddm-pca-1", patch, channels, d, centered, whitened. Written atomically.
void pca_save(const Pca *p, const char *path);
Pca *pca_load(const char *path); // fatal one-line errors for a missing, corrupt or non-PCA file
// The same tensors and metadata inside another safetensors file (an l-DAE checkpoint embeds its
// tokenizer): tensors "pca.mean", "pca.basis", "pca.eigenvalues"; metadata keys meta_prefix + "patch",
// "channels", "d", "centered", "whitened". pca_st_add borrows p until the writer is written.
void pca_st_add(StWriter *w, const Pca *p, const char *meta_prefix);
Pca *pca_st_read(const StFile *f, const char *meta_prefix);   // fatal one line if malformed
void pca_free(Pca *p);
