// Samplers: small host-side loops that call the model through one "denoise" callback.
// They know nothing about the network; the caller wraps its model (and its device buffers) in a
// DenoiseFn. All state x is [n, c, h, w] float, updated in place; coefficients are computed in double.
//
// Time conventions (each that of its reference code):
//  * SiT (willisma/SiT transport): continuous t in [0, 1], NOISE at t = 0, DATA at t = 1.
//      x_t = alpha_t * x1 + sigma_t * x0      (x0 ~ N(0, I) noise, x1 data)
//      Linear: alpha_t = t,            sigma_t = 1 - t            velocity = x1 - x0
//      GVP:    alpha_t = sin(pi t/2),  sigma_t = cos(pi t/2)      velocity = (pi/2)cos(pi t/2) x1 - (pi/2)sin(pi t/2) x0
//    The model predicts the velocity d x_t / dt = alpha'_t x1 + sigma'_t x0 and is fed t as a float.
//  * DDPM (DiT / improved-diffusion): T = 1000 steps, betas linear 1e-4 -> 0.02 (float64),
//    integer t in [0, 999], x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) eps with NOISE at t = 999.
//    The model predicts eps and is always fed the ORIGINAL integer timestep (as a float), also when
//    the sampler uses a respaced subset of the 1000 steps.
#pragma once
#include "rng.h"

// out = model(x, t, y) for n samples of shape [c, h, w]; t[i] is sample i's time; y [n] may be NULL
// (unconditional). out [n, c, h, w] has the model's data shape (for a learned-sigma DiT the wrapper
// passes only the first c output channels: the samplers use fixed variances).
typedef void (*DenoiseFn)(void *ctx, float *out, const float *x, const float *t, const int *y, int n);

typedef struct {
    DenoiseFn fn; void *ctx;
    int c, h, w;
    // 1 = no guidance. Otherwise (and only when y != NULL) the conditional and null-label halves run
    // in ONE call of 2n samples (first the n samples with labels y, then the same n samples with
    // null_class) and out = uncond + cfg_scale * (cond - uncond) on ALL channels.
    // (DiT's and SiT's forward_with_cfg guide only the first 3 channels, a quirk of their 4-channel
    // latents; we deliberately guide every channel.)
    float cfg_scale;
    int null_class; // label of the null class (= num_classes); used only when cfg_scale != 1 and y != NULL
} Denoiser;

// out [n, c, h, w] = the (guided) model output at x [n, c, h, w], times t [n], labels y [n] or NULL.
// With guidance it allocates a scratch buffer of 2n samples (inputs and outputs) per call.
void denoiser_eval(const Denoiser *d, float *out, const float *x, const float *t, const int *y, int n);

typedef enum { SIT_LINEAR, SIT_GVP } SitPath;
typedef enum { ODE_EULER, ODE_HEUN } OdeMethod;

// Probability-flow ODE dx/dt = v(x, t) from t = 0 (x = noise) to t = 1 (x = sample) on the uniform
// grid t_i = i / steps, i = 0..steps (`steps` intervals).
//  Euler: x += dt * v(x, t_i)                                    -> steps model evaluations.
//  Heun (torchdiffeq "heun2", what SiT uses): k1 = v(x, t_i), k2 = v(x + dt k1, t_{i+1}),
//         x += dt/2 (k1 + k2), the correction done on EVERY step, the last included (it evaluates
//         the model at t = 1)                                   -> 2 * steps model evaluations.
// SiT's --num-sampling-steps N (a linspace of N points) corresponds to steps = N - 1.
// `path` does not enter the ODE (the velocity model already embodies its path); it is accepted so
// that all SiT samplers take the same arguments.
void sit_sample_ode(const Denoiser *d, SitPath path, OdeMethod m, int steps, float *x, const int *y, int n);

// Euler-Maruyama on SiT's reverse SDE with the "SBDM" diffusion (diffusion_norm 1):
//   dx = [v + w(t) * score] dt + sqrt(2 w(t)) dW,
//   w(t)  = (alpha'/alpha) sigma^2 - sigma sigma'          (Linear: (1-t)/t,  GVP: (pi/2) cot(pi t/2))
//   score = ((alpha/alpha') v - x) / var,  var = sigma^2 - (alpha/alpha') sigma' sigma   (Linear: 1-t, GVP: 1)
// Since var = (alpha/alpha') w, the drift simplifies to   v + w*score = 2 v - (alpha'/alpha) x,
// which is what we evaluate (no 1/var, so no singularity at t = 1; the only one is alpha = 0 at t = 0).
// Grid: `steps` Euler-Maruyama steps on t_i = t0 + i (t1 - t0)/steps with t1 = 1 - last_step, then one
// final deterministic "Mean" step of size last_step at t1: x += last_step * (2 v - (alpha'/alpha) x)
// (no noise) -> steps + 1 model evaluations. If last_step <= 0: t1 = 1 - t0 and no final step
// (SiT's check_interval). t0 = SIT_SDE_T0 (1e-3); sit_sample_sde_ex takes it as a parameter.
// SiT's --num-sampling-steps N corresponds to steps = N - 1. Noise is drawn from rng in element order.
// Note: near t0 w(t) ~ 1/t is large (w dt ~ 4 at t0 = 1e-3, 250 steps), so the first steps
// overshoot and the following ones contract again: this is the reference scheme's behaviour.
#define SIT_SDE_T0 1e-3f
void sit_sample_sde(const Denoiser *d, SitPath path, int steps, float last_step, float *x, const int *y, int n,
                    Rng *rng);
void sit_sample_sde_ex(const Denoiser *d, SitPath path, int steps, float t0, float last_step, float *x,
                       const int *y, int n, Rng *rng);

// DDPM sampling from x = noise at t = 999 to a sample. `steps` (1..1000) timesteps respaced like DiT's
// space_timesteps(1000, "<steps>"): kept t = round-half-even(i * 999/(steps-1)) accumulated as DiT does,
// i = 0..steps-1 (so both 999 and 0 are kept; steps = 1 keeps only 999). New betas come from the kept
// alphas_cumprod: beta'_i = 1 - ab[t_i] / ab[t_{i-1}] (ab[t_{-1}] = 1).
//  ancestral (ddim = 0): x0 = (x - sqrt(1-ab) eps)/sqrt(ab), optionally clipped to [-1, 1] (clip_x0),
//    x = posterior mean(x0, x) + exp(0.5 * log_var) z with the fixed-small posterior variance
//    beta_tilde, log-clipped like improved-diffusion (log_var[0] = log beta_tilde[1]); no noise at the
//    last step (t = 0), where the result is the posterior mean.
//  DDIM (ddim = 1): eps is recomputed from the (possibly clipped) x0, sigma = eta *
//    sqrt((1-ab_prev)/(1-ab)) sqrt(1 - ab/ab_prev), x = sqrt(ab_prev) x0 + sqrt(1-ab_prev-sigma^2) eps
//    + sigma z (eta = 0: deterministic, no random numbers drawn). The last step returns x0.
// rng may be NULL when no noise is needed (DDIM with eta = 0). steps model evaluations.
void ddpm_sample(const Denoiser *d, int steps, int ddim, float eta, int clip_x0, float *x, const int *y, int n,
                 Rng *rng);

// The respaced timesteps DDPM sampling uses, ascending: ts [steps]. Exposed for tests and logging.
void ddpm_respace(int steps, int *ts);
