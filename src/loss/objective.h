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
//
//   denoise:    the l-DAE deconstruction trajectory (SPEC §1.2) as one objective with five settings
//               (objective_set_denoise); t = an integer noise level 0..999 sampled uniformly (DiT's convention,
//               fed to the model as a float), x_t built from the clean latent z0 and eps:
//                 noise schedule  ddpm_linear:   gamma_t = sqrt(ab_t), sigma_t = sqrt(1 - ab_t) (ddpm's betas)
//                                 gamma2_linear: gamma_t^2 = 1 - t/999, sigma_t^2 = t/999 (VP, gamma^2 linear 1 -> 0)
//                                 sigma_linear:  gamma_t = 1, sigma_t = sqrt(2) t / 999 (l-DAE)
//                 tokenizer       pixel: z0 = x, z_t = gamma_t x + sigma_t eps, x_t = z_t.
//                                 pca:   z0 = pca_encode(x) [T, d], z_t = gamma_t z0 + sigma_t eps (eps = the first
//                                        T*d noise values of the sample), x_t = pca_decode(z_t) ("inverse PCA").
//                 target          noise:  eps, as an image: pixel eps; pca pca_decode(eps) - pca_decode(0)
//                                         (= V^T eps, times sqrt(eig) if whitened).
//                                 latent: (pca only) z0 as an image: pca_decode(z0), the PCA reconstruction of x.
//                                 image:  the original image x.
//                 pca_output      image:  the network's output is compared with the target image in pixels.
//                                 latent: (pca only; noise or latent target) the output is compared in the latent:
//                                         r = V (xhat - target) per PCA patch (first d components, divided by
//                                         sqrt(eig) if whitened), L_b = (1/(T d)) sum r^2.
//                 loss_weight     mse:  pixel MSE (pca_output image) as the other objectives.
//                                 ldae: (pca, pca_output image) the l-DAE weighting above with this schedule's
//                                       sigma_t: lambda_t = 1/(1 + sigma_t^2), w_i = 1 (i < d) / 0.1.
//               ldae is exactly denoise with sigma_linear, pca, image, image, ldae (bit for bit), and denoise with
//               ddpm_linear, pixel, noise, image, mse is exactly ddpm.
// Every objective may use a single noise level (objective.single_t >= 0: every sample gets that t).
//
// Device side: objective_make_pair and objective_loss work on device memory of the table the objective is bound
// to (objective_bind); the per-sample times t are host values (the step draws them on the host), from which the
// per-sample coefficients are computed in double on the host and uploaded with the batch.
#pragma once
#include "ops/ops.h"
#include "rng.h"
#include "tok/pca.h"
#include "tok/pca_dev.h"

typedef enum { OBJ_SIT_LINEAR, OBJ_SIT_GVP, OBJ_DDPM, OBJ_LDAE, OBJ_DENOISE } ObjectiveKind;
typedef enum { NOISE_DDPM_LINEAR, NOISE_GAMMA2_LINEAR, NOISE_SIGMA_LINEAR } DenoiseNoise;
typedef enum { TOK_PIXEL, TOK_PCA } DenoiseTokenizer;
typedef enum { TARGET_NOISE, TARGET_LATENT, TARGET_IMAGE } DenoiseTarget;
typedef enum { OUTPUT_IMAGE, OUTPUT_LATENT } DenoiseOutput;
typedef enum { WEIGHT_MSE, WEIGHT_LDAE } DenoiseWeight;

#define LDAE_LEVELS 1000         // noise levels 0..999
#define LDAE_SIGMA_MAX 1.4142135623730951   // sqrt(2), sigma at level 999
#define LDAE_TAIL_WEIGHT 0.1     // loss weight of the PCA components past the first d

typedef struct { int noise, tokenizer, target, output, weight; } DenoiseSpec;

typedef struct {
    ObjectiveKind kind;
    double alphas_cumprod[1000];   // ddpm and denoise ddpm_linear
    DenoiseSpec dn;                // ldae and denoise (ldae: fixed to the l-DAE row)
    float single_t;                // >= 0: every sample uses this t (--single-noise-level); < 0: sampled
    const Pca *pca;                // pca tokenizer only: the tokenizer (borrowed) and the image shape
    int C, H, W;
    struct ObjectiveDev *dev;      // device buffers (objective_bind), or NULL
} Objective;

int objective_parse(const char *name);   // -1 if unknown
const char *objective_name(ObjectiveKind k);
void objective_init(Objective *o, ObjectiveKind kind);
// denoise: the five settings by name ("" keeps the current one). Returns NULL, or a one-line reason for an
// unknown name or a combination that means nothing (latent target / latent output / ldae weighting with the
// pixel tokenizer; image target or ldae weighting with the latent output).
const char *objective_set_denoise(Objective *o, const char *noise, const char *tokenizer, const char *target,
                                  const char *output, const char *weight);
// Names of the settings (for the config JSON): field 0 noise, 1 tokenizer, 2 target, 3 pca_output, 4 loss_weight.
const char *denoise_setting_name(int field, int value);
// Whether the objective needs a PCA tokenizer (ldae; denoise with tokenizer pca).
int objective_uses_pca(const Objective *o);
// NULL if t is a valid time for the objective (ddpm, denoise: an integer 0..999; ldae 0..999; SiT 0..1),
// else a one-line reason.
const char *objective_t_error(ObjectiveKind kind, float t);
// pca tokenizer: the tokenizer and the images' shape; fatal one line ("what: ...") if they do not fit.
void objective_set_pca(Objective *o, const Pca *p, int C, int H, int W, const char *what);
// ldae noise scale sigma_t = sqrt(2) t / 999 and loss weight lambda_t = 1 / (1 + sigma_t^2).
double ldae_sigma(float t);
double ldae_lambda(float t);
// ldae / denoise: x_t = gamma_t z0 + sigma_t eps for the objective's noise schedule.
void denoise_gamma_sigma(const Objective *o, float t, double *gamma, double *sigma);
void objective_sample_t(const Objective *o, Rng *r, float *t, int B);
// Puts the objective on a device for batches of up to max_batch samples (the tokenizer too, now or when
// objective_set_pca is called later). objective_unbind frees what bind allocated; a copy of a bound Objective
// shares its device buffers (unbind one of them only).
void objective_bind(Objective *o, const Ops *ops, int max_batch);
void objective_unbind(Objective *o);
// An objective that is not bound computes on host memory (the CPU table, bound for the call).
// x, noise, xt, target: device [B, n] with n = C*H*W per sample; t: host [B].
void objective_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                         const float *t, int B, long n);
// out [B, Cout, HW], target [B, C, HW], d_out [B, Cout, HW] (NULL: loss only): device; t: host [B]. Returns the
// loss (downloaded); d_out gets dLoss/d_out.
float objective_loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C,
                     int Cout, long HW, float *d_out);
