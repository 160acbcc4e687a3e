// One optimisation step's pieces, shared by the training loop, the benchmark and the PyTorch-parity tests:
// loss and gradients for a batch (diffusion objective + Dispersive Loss), clipping, AdamW, EMA. Everything runs
// as ops on the model's device; the host sees the batch going up (step_upload) and scalars coming down.
#pragma once
#include <stdint.h>
#include "loss/dispersive.h"
#include "loss/objective.h"
#include "nn/dit.h"

typedef struct {
    int variant;                        // DispVariant, or -1 for none
    float lambda, tau, eps;
    int n_blocks, blocks[DISP_MAX_BLOCKS];
    float *grad[DISP_MAX_BLOCKS];       // device [B, T*H] per chosen block
    float **extra;                      // depth pointers handed to dit_backward
    DispWork work;
    struct Monitor *mon;                // NULL, or the mechanism monitor (train/monitor.h), measuring when due
    // --disp-gather over `ranks` data-parallel processes (disp_setup_gather): the loss sees the global batch
    int ranks, rank;
    float *zg, *dzg;                    // device [ranks * B, T*H]: the gathered block output and its gradient
    float *h_local, *h_global;          // host scratch of the all-gather
} DispSetup;

// variant < 0 or lambda == 0 disables it; blocks are 0-based; buffers for batch B are allocated.
void disp_setup_init(DispSetup *d, const Dit *m, int variant, float lambda, float tau, float eps,
                     const int *blocks, int n_blocks, int B);
void disp_setup_free(DispSetup *d, const Dit *m);
// Data parallel over `ranks` processes with local batch B: the loss is computed on the all-gathered global batch
// (rank-order rows), and each rank keeps the gradient of its own rows, times `ranks` (the gradient all-reduce
// takes the mean over the ranks).
void disp_setup_gather(DispSetup *d, const Dit *m, int ranks, int rank, int B);

// A training batch on the model's device, with its host twin (filled by the caller, then step_upload).
typedef struct {
    int cap;
    long n, nout;                        // floats per sample of x and of the model's output
    // host
    float *h_x, *h_noise, *h_t;          // [B, n], [B, n], [B]
    int *h_y;                            // [B] labels (in 0..num_classes)
    // device
    float *x, *noise, *t, *xt, *target, *out, *d_out;
    int *y;
    const Ops *ops;
} StepBatch;

void step_batch_init(StepBatch *b, const Dit *m, int B);
void step_batch_free(StepBatch *b);
// The training step's batch upload: x, noise, t and (class-conditional models) y of the first B samples.
void step_upload(StepBatch *b, const Dit *m, int B);

typedef struct { float diff, disp, total; double disp_seconds; } LossParts;

// Forward, losses and backward for the uploaded batch; parameter gradients are zeroed first. d_xt (device,
// optional) receives the gradient w.r.t. the model input.
LossParts step_loss_and_grads(Dit *m, const Objective *o, DispSetup *d, StepBatch *b, int B, float *d_xt);

typedef struct { float *m, *v, *ema; } OptimState;   // device, model layout

void optim_init(OptimState *s, const Dit *m);          // zero moments, EMA = current weights
void optim_free(OptimState *s, const Dit *m);
// Global gradient norm before clipping; scales the gradients to max_norm when above it (max_norm > 0),
// with torch.nn.utils.clip_grad_norm_'s coefficient max_norm / (norm + 1e-6).
float optim_clip(Dit *m, float max_norm);
// AdamW on the trainable tensors (the frozen pos_embed is left alone); step_index counts from 0.
void optim_adamw(Dit *m, OptimState *s, int64_t step_index, float lr, float beta1, float beta2, float eps, float wd);
void optim_ema(const Dit *m, OptimState *s, float decay);
