// ddm public C API: what another C program (or ctypes) calls. Link with build/libddm.a (or
// libddm.so) and -lopenblas -llapacke -lcjson -lstb -lz -lm -fopenmp.
// Errors a caller can cause (missing or corrupt files, unknown names) print one line
// "ddm: error: ..." on stderr and exit(1), as the command-line tool does.
#ifndef DDM_H
#define DDM_H
#ifdef __cplusplus
extern "C" {
#endif

// Dispersive Loss (Wang & He 2025). z is [batch, dim] row-major (one flattened representation per
// sample); variant is "infonce_l2", "infonce_cos", "hinge" or "covariance". Returns the loss; if dz is
// not NULL it receives dL/dz, [batch, dim]. batch < 2 gives 0 (and a zero dz).
//   infonce_l2:  log( mean_{i,j} exp(-||z_i - z_j||^2 / (dim * tau)) ), all batch^2 pairs incl. i = j
//   infonce_cos: log( mean_{i,j} exp(cos(z_i, z_j) / tau) )
//   hinge:       mean_{i,j} max(0, eps - ||z_i - z_j||^2 / dim)^2   (tau unused)
//   covariance:  sum_{a != b} C_ab^2 / dim, C the batch covariance of the l2-normalised z (tau, eps unused)
float ddm_dispersive_loss(const float *z, int batch, int dim, const char *variant, float tau, float eps, float *dz);

// A DiT/SiT checkpoint written by `ddm train`, for inference.
typedef struct ddm_model ddm_model;
ddm_model *ddm_model_load(const char *ckpt_path, int use_ema);
// Shape of the model's input [channels, height, width], its class count (0 = unconditional; label
// num_classes is the null class), depth, hidden size and output channels.
void ddm_model_info(const ddm_model *m, int *channels, int *height, int *width, int *num_classes, int *depth,
                    int *hidden, int *out_channels);
// out [batch, out_channels, height, width] = model(x [batch, channels, height, width], t [batch], y [batch]);
// y is ignored (may be NULL) for unconditional models. SiT checkpoints take t in [0, 1] (data at 1);
// DDPM checkpoints take the integer step in [0, 999] as a float.
void ddm_model_forward(ddm_model *m, const float *x, const float *t, const int *y, int batch, float *out);
// The output of block k (0-based) of the last forward, [batch, tokens, hidden], copied to host memory the model
// owns; valid until the next forward or ddm_model_free.
const float *ddm_model_block_output(const ddm_model *m, int k);
void ddm_model_free(ddm_model *m);

// A patch-wise PCA tokenizer written by `ddm pca` (l-DAE). Latents are [n, tokens, d], tokens =
// (height/patch)*(width/patch) in row-major order; each p x p x C patch (flattened in (c, i, j) order)
// maps to z = V (x - mean), V the top d principal components (z / sqrt(eigenvalue) if whitened).
// Images whose channels differ from the tokenizer's, or whose size the patch does not divide, are a
// one-line error.
typedef struct ddm_pca ddm_pca;
ddm_pca *ddm_pca_load(const char *path);
int ddm_pca_dim(const ddm_pca *p); // d
void ddm_pca_encode(const ddm_pca *p, const float *imgs, int n, int channels, int height, int width, float *latents);
// Inverse PCA: imgs [n, channels, height, width] = V^T z + mean.
void ddm_pca_decode(const ddm_pca *p, const float *latents, int n, int channels, int height, int width, float *imgs);
void ddm_pca_free(ddm_pca *p);

#ifdef __cplusplus
}
#endif
#endif
