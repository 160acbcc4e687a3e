// ddm public C API: what another C program (or ctypes) calls. After `make install`:
// cc prog.c $(pkg-config --cflags --libs ddm) (add --static for libddm.a); in the tree, link build/libddm.a
// (or libddm.so) and -lopenblas -llapacke -lcjson -lstb -lpng -ljpeg -lz -lm -fopenmp -pthread.
// Errors a caller can cause (missing or corrupt files, unknown names) print one line
// "ddm: error: ..." on stderr and exit(1), as the command-line tool does.
#ifndef DDM_H
#define DDM_H
#include <stddef.h>
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

// A dataset in any format ddm reads (docs/data.md): an IDX directory or file, an ImageFolder (PNG/JPEG; with
// image_size > 0 ADM's resize and centre crop), CIFAR-10/100 batches, or latents (.npy/.npz, fast-DiT's
// folders). format: NULL or "auto" (detected), "idx", "imagefolder", "cifar", "latents"; split: "train" or
// "test" (a source without splits serves either). Samples are read on demand (memory-mapped or decoded).
typedef struct ddm_data ddm_data;
ddm_data *ddm_data_open(const char *path, const char *format, const char *split, int image_size);
// Count, sample shape [channels, height, width] and classes (0 = unlabelled).
void ddm_data_info(const ddm_data *d, long long *n, int *channels, int *height, int *width, int *num_classes);
// Sample i into x [channels, height, width] (pixels in [-1, 1], latents as stored); *label (may be NULL) gets
// its class or -1. Returns 0, or -1 with the one-line reason (naming the file) in err.
int ddm_data_read(ddm_data *d, long long i, float *x, int *label, char *err, size_t err_cap);
// The description a checkpoint records, as JSON (malloc'd; free() it).
char *ddm_data_describe(const ddm_data *d);
void ddm_data_close(ddm_data *d);

// TensorBoard event files (events.out.tfevents.<time>.<host> in dir): scalars, and image grids of
// [n, channels (1 or 3), height, width] floats with values lo..hi. A failed write is a one-line error.
typedef struct ddm_tensorboard ddm_tensorboard;
ddm_tensorboard *ddm_tensorboard_open(const char *dir);
void ddm_tensorboard_scalar(ddm_tensorboard *t, const char *tag, long long step, float value);
void ddm_tensorboard_images(ddm_tensorboard *t, const char *tag, long long step, const float *imgs, int n, int channels,
                            int height, int width, float lo, float hi);
void ddm_tensorboard_close(ddm_tensorboard *t);

#ifdef __cplusplus
}
#endif
#endif
