// Measurements of the Dispersive Loss mechanism during training (issue 17), cheap enough to leave on
// and the same with or without the loss (without it they say what force the loss WOULD exert). For each
// monitored block k, at every log step, from the training batch itself:
//   feat_rms_b<k>    mean over the batch of ||z_i|| / sqrt(D)   (z_i = block k's output, D = tokens*hidden)
//   pair_share_b<k>  share of the off-diagonal pairs i != j with exp(-d_ij / tau) > 1e-3, d_ij = ||z_i - z_j||^2 / D:
//                    the pairs on which the InfoNCE loss still exerts a force
//   disp_grad_b<k>   ||lambda_k dL_disp/dz|| over the batch, with the run's variant (infonce_l2 when the loss is
//                    off), tau, eps, and lambda_k = lambda / number of regularised blocks (lambda when off)
//   diff_grad_b<k>   ||dL/dz_k|| as it reaches block k from above, before block k's own Dispersive gradient is
//                    added: the diffusion loss's gradient (plus deeper blocks' Dispersive gradients, if any)
//   grad_ratio_b<k>  disp_grad / diff_grad
// and every `erank_every` steps, on a fixed batch (the same images, t and noise in every run and at every
// step: drawn with fixed seeds, not the run's), after the optimiser step, raw weights:
//   erank_b<k>       effective rank (Roy & Vetterli: exp of the entropy of the normalised singular values) of
//                    the batch-centred block outputs [n, D]
// Nothing here draws from the run's random streams or changes the weights, so training is bit-identical
// with the monitor on or off.
#pragma once
#include <stdio.h>
#include "data/data.h"
#include "loss/dispersive.h"
#include "loss/objective.h"
#include "nn/dit.h"

#define MONITOR_MAX_BLOCKS 8

typedef struct Monitor {
    int n_blocks, blocks[MONITOR_MAX_BLOCKS];
    int variant;                 // DispVariant of the (possibly hypothetical) loss
    float lambda_k, tau, eps;
    int due;                     // set by the training loop: measure this step
    // filled by the step when due
    double feat_rms[MONITOR_MAX_BLOCKS], pair_share[MONITOR_MAX_BLOCKS], disp_grad[MONITOR_MAX_BLOCKS];
    double *block_grad_sumsq;    // [depth] (host) handed to the model's backward (Dit.block_grad_sumsq)
    DispWork work;               // the Gram matrix and the (hypothetical) Dispersive gradient, on the device
    float *g, *h_g;              // that gradient [B, D]: device, and its host copy (summed on the host)
    // the fixed batch for the effective rank, on the device
    int erank_every, erank_n;
    float *fxt, *ft;             // the model inputs x_t [n, C*H*W] and their t [n]
    int *fy;                     // [n] labels, or NULL (unconditional)
    const Ops *ops;
} Monitor;

// blocks: 0-based indices; variant < 0 = the loss is off (infonce_l2 measured hypothetically). obj: the run's
// objective, fully set up and bound for batches of `batch` (its tokenizer too), which builds the fixed batch's x_t.
Monitor *monitor_create(const Dit *m, const int *blocks, int n_blocks, int variant, float lambda, int n_active,
                        float tau, float eps, int erank_every, int erank_n, DataSource *data, const Objective *obj,
                        int batch);
void monitor_free(Monitor *mon);
// After the forward pass of a due step (block outputs of the batch are in the model's activations).
void monitor_after_forward(Monitor *mon, const Dit *m, int B);
// Appends ,"feat_rms_b1":...  for a due step (after the backward pass) to a JSON object being written.
void monitor_write_step(Monitor *mon, FILE *f);
// Effective ranks on the fixed batch: forward passes in chunks of `chunk`, the block outputs downloaded; writes
// ,"erank_b1":... to f.
void monitor_write_erank(Monitor *mon, Dit *m, int chunk, FILE *f);
