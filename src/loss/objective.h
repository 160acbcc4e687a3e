// Diffusion training objectives and their time conventions (SPEC §2), each that of its reference code:
//   sit_linear: SiT linear interpolant, t ~ U[0,1), noise at t = 0, data at t = 1:
//               x_t = t x + (1 - t) eps, the model predicts the velocity x - eps.
//   sit_gvp:    x_t = sin(pi t / 2) x + cos(pi t / 2) eps, velocity (pi/2)(cos(pi t/2) x - sin(pi t/2) eps).
//   ddpm:       DiT's DDPM, 1000 steps, betas linear 1e-4 .. 0.02, integer t in [0, 999] (noise at 999)
//               fed to the model as a float; x_t = sqrt(ab_t) x + sqrt(1 - ab_t) eps, predicts eps.
// The loss is the per-sample mean squared error over the first C output channels (learned-sigma
// channels are ignored, as SiT does; DiT's VLB term on them is not implemented), averaged over the batch.
#pragma once
#include "rng.h"

typedef enum { OBJ_SIT_LINEAR, OBJ_SIT_GVP, OBJ_DDPM } ObjectiveKind;

typedef struct {
    ObjectiveKind kind;
    double alphas_cumprod[1000];   // ddpm only
} Objective;

int objective_parse(const char *name);   // -1 if unknown
const char *objective_name(ObjectiveKind k);
void objective_init(Objective *o, ObjectiveKind kind);
void objective_sample_t(const Objective *o, Rng *r, float *t, int B);
// x, noise, xt, target: [B, n] with n = C*H*W per sample.
void objective_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                         const float *t, int B, long n);
// out [B, Cout, HW]; target [B, C, HW]. Returns the loss; d_out [B, Cout, HW] gets dLoss/d_out.
float objective_loss(const float *out, const float *target, int B, int C, int Cout, long HW, float *d_out);
