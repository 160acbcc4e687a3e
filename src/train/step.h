// One optimisation step's pieces, shared by the training loop and the PyTorch-parity tests:
// loss and gradients for a batch (diffusion objective + Dispersive Loss), clipping, AdamW, EMA.
#pragma once
#include <stdint.h>
#include "loss/objective.h"
#include "nn/dit.h"

#define DISP_MAX_BLOCKS 64

typedef struct {
    int variant;                        // DispVariant, or -1 for none
    float lambda, tau, eps;
    int n_blocks, blocks[DISP_MAX_BLOCKS];
    float *grad[DISP_MAX_BLOCKS];       // [B, T*H] scratch per chosen block
    float **extra;                      // depth pointers handed to dit_backward
    struct Monitor *mon;                // NULL, or the mechanism monitor (train/monitor.h), measuring when due
} DispSetup;

// variant < 0 or lambda == 0 disables it; blocks are 0-based; scratch for batch B is allocated.
void disp_setup_init(DispSetup *d, const Dit *m, int variant, float lambda, float tau, float eps,
                     const int *blocks, int n_blocks, int B);
void disp_setup_free(DispSetup *d, const Dit *m);

typedef struct { float diff, disp, total; double disp_seconds; } LossParts;

// Forward, losses and backward for one batch; parameter gradients are zeroed first.
// Host buffers: x, noise [B, n]; t [B]; y [B] or NULL; xt, target [B, n]; out, d_out [B, Cout*HW].
// d_xt (optional) receives the gradient w.r.t. the model input.
LossParts step_loss_and_grads(Dit *m, const Objective *o, DispSetup *d, const float *x, const float *noise,
                              const float *t, const int *y, int B, float *xt, float *target, float *out,
                              float *d_out, float *d_xt);

typedef struct { float *m, *v, *ema; } OptimState;   // device, model layout

void optim_init(OptimState *s, const Dit *m);          // zero moments, EMA = current weights
void optim_free(OptimState *s, const Dit *m);
// Global gradient norm before clipping; scales the gradients to max_norm when above it (max_norm > 0),
// with torch.nn.utils.clip_grad_norm_'s coefficient max_norm / (norm + 1e-6).
float optim_clip(Dit *m, float max_norm);
// AdamW on the trainable tensors (the frozen pos_embed is left alone); step_index counts from 0.
void optim_adamw(Dit *m, OptimState *s, int64_t step_index, float lr, float beta1, float beta2, float eps, float wd);
void optim_ema(const Dit *m, OptimState *s, float decay);
