// Diffusion training objectives and their time conventions (SPEC §2), each that of its reference code:
//   sit_linear: SiT linear interpolant, t ~ U[0,1), noise at t = 0, data at t = 1:
//               x_t = t x + (1 - t) eps, the model predicts the velocity x - eps.
//   sit_gvp:    x_t = sin(pi t / 2) x + cos(pi t / 2) eps, velocity (pi/2)(cos(pi t/2) x - sin(pi t/2) eps).
//   ddpm:       DiT's DDPM, 1000 steps, betas linear 1e-4 .. 0.02, integer t in [0, 999] (noise at 999)
//               fed to the model as a float; x_t = sqrt(ab_t) x + sqrt(1 - ab_t) eps, predicts eps.
// For these three the loss is the per-sample mean squared error over the first C output channels
// (learned-sigma channels are ignored, as SiT does; DiT's VLB term on them is not implemented), averaged
// over the batch.
//
//   ldae:       l-DAE (SPEC §1.2), noise in the latent of a patch-wise PCA tokenizer (objective_set_pca).
//               t = an integer noise level 0..999 (sampled uniformly, fed to the model as a float, as DiT),
//               sigma_t = sqrt(2) t / 999 (0 at t = 0, sqrt 2 at t = 999), gamma_t = 1:
//                 z0 = pca_encode(x) [T, d] per sample (V (x - mean) per PCA patch, whitened if the
//                 tokenizer is), z_t = z0 + sigma_t eps with eps = the first T*d values of the sample's
//                 pixel-sized noise, x_t = pca_decode(z_t) (V^T z_t + mean: the "inverse PCA" image).
//               The target is the clean image x. Loss per sample, r = V_full (x - xhat) per PCA patch
//               (the full D x D basis, no mean, no whitening), w_i = 1 for i < d and 0.1 for i >= d,
//               lambda_t = 1 / (1 + sigma_t^2):
//                 L_b = lambda_t * (1 / (T D)) * sum_patches sum_i w_i r_i^2
//               (with w = 1 and lambda = 1 this is the per-pixel MSE, as V_full is orthonormal);
//               the batch loss is the mean over b. dL/dxhat = -(2 lambda_t / (B T D)) V_full^T (w . r) per
//               patch (two sgemm passes); learned-sigma channels get zero gradient.
#pragma once
#include "rng.h"
#include "tok/pca.h"

typedef enum { OBJ_SIT_LINEAR, OBJ_SIT_GVP, OBJ_DDPM, OBJ_LDAE } ObjectiveKind;

#define LDAE_LEVELS 1000         // noise levels 0..999
#define LDAE_SIGMA_MAX 1.4142135623730951   // sqrt(2), sigma at level 999
#define LDAE_TAIL_WEIGHT 0.1     // loss weight of the PCA components past the first d

typedef struct {
    ObjectiveKind kind;
    double alphas_cumprod[1000];   // ddpm only
    const Pca *pca;                // ldae only: the tokenizer (borrowed) and the image shape
    int C, H, W;
} Objective;

int objective_parse(const char *name);   // -1 if unknown
const char *objective_name(ObjectiveKind k);
void objective_init(Objective *o, ObjectiveKind kind);
// ldae: the tokenizer and the images' shape; fatal one line ("what: ...") if they do not fit.
void objective_set_pca(Objective *o, const Pca *p, int C, int H, int W, const char *what);
// ldae noise scale sigma_t = sqrt(2) t / 999 and loss weight lambda_t = 1 / (1 + sigma_t^2).
double ldae_sigma(float t);
double ldae_lambda(float t);
void objective_sample_t(const Objective *o, Rng *r, float *t, int B);
// x, noise, xt, target: [B, n] with n = C*H*W per sample.
void objective_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                         const float *t, int B, long n);
// out [B, Cout, HW]; target [B, C, HW]; t [B] (used by ldae). Returns the loss; d_out [B, Cout, HW]
// gets dLoss/d_out.
float objective_loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C,
                     int Cout, long HW, float *d_out);
