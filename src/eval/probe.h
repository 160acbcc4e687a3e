// Representation probing (l-DAE, SPEC §1.2; issue 3 item 4): how good are a network's features.
//
// Features: a block's output tokens [T, hidden], global-average-pooled over the tokens, for the clean
// image at a small fixed noise level (x_t from objective_make_pair with a fixed-seed noise and one t for
// every sample). Baselines go through the same probes: raw pixels, PCA coefficients, a randomly
// initialised network.
//
// Probes, on features cached in memory (one row of `dim` floats per sample):
//   linear_probe: the MAE protocol — BatchNorm without affine (with frozen features: standardisation by
//     the training set's per-feature mean and biased variance, eps 1e-6), then one linear layer trained
//     with softmax cross-entropy by minibatch SGD with momentum, a linear warmup and a cosine schedule.
//   knn_accuracy: weighted k-NN on cosine similarity (DINO's protocol, plus centring, see below).
// Both return the top-1 accuracy on the test set as a fraction in [0, 1].
#pragma once
#include <stdint.h>
#include "data/dataset.h"
#include "loss/objective.h"
#include "nn/dit.h"
#include "tok/pca.h"

// Default input noise level for the features, by objective (data at t = 1 for SiT, at t = 0 for DDPM):
// ddpm, ldae and denoise (every schedule): t = 10 of 1000 (the l-DAE paper; ldae: sigma = sqrt(2) 10/999 in the PCA latent);
// sit_linear / sit_gvp: t = 0.99 (x_t = 0.99 x + 0.01 eps).
float probe_default_t(const char *objective);
// NULL if t is a valid time for the objective (ddpm: an integer 0..999; ldae: 0..999; SiT: 0..1), else a
// one-line reason.
const char *probe_t_error(const char *objective, float t);

// Features of every image of d from block `block` (0-based) of m: x_t = objective_make_pair(x, eps, t)
// with eps ~ N(0, I) drawn per sample from the stream (seed, sample index), so the features do not depend
// on the batch size (up to GEMM rounding); class-conditional models get the null class (num_classes),
// so no label can leak. ldae needs its PCA tokenizer (pca; NULL for the other objectives): the noise is
// added in the PCA latent exactly as in training.
// Returns a malloc'd [d->n, hidden]. Fatal (one line) if the images do not fit the model or the block does
// not exist.
float *probe_features(Dit *m, const char *objective, const Pca *pca, const Dataset *d, int block, float t, int batch,
                      uint64_t seed);
// The same for any set-up objective (denoise included: its settings and tokenizer as in training, e.g. from
// train_objective_setup on the checkpoint's config); the objective's single noise level is ignored (t is given).
float *probe_features_objective(Dit *m, const Objective *obj, const Dataset *d, int block, float t, int batch,
                                uint64_t seed);
// The features of several blocks from one forward pass per batch: feats[i] = a malloc'd [d->n, hidden] for
// blocks[i], each equal to probe_features_objective(..., blocks[i], ...).
void probe_features_blocks(Dit *m, const Objective *obj, const Dataset *d, const int *blocks, int nblocks, float t,
                           int batch, uint64_t seed, float **feats);
// Baselines. Raw pixels: [n, C*H*W] (a copy of the images in [-1, 1]). PCA: pca_encode flattened,
// [n, T*d]; fatal if the tokenizer does not fit the images.
float *probe_features_pixels(const Dataset *d);
float *probe_features_pca(const Pca *p, const Dataset *d);

typedef struct {
    int epochs;            // passes over the training set (30)
    int batch;             // minibatch size (256)
    float lr;              // peak learning rate (0.1); per-step schedule: linear warmup, then cosine to 0
    float momentum;        // SGD momentum (0.9)
    float weight_decay;    // L2 on the weights, not the bias (0, as MAE's linear probe)
    float warmup_epochs;   // linear warmup length (1 epoch), capped at half the run
    uint64_t seed;         // minibatch order (the weights start at zero, see probe.c)
} ProbeOpts;

void probe_opts_defaults(ProbeOpts *o);

typedef struct {
    float train_loss;      // mean cross-entropy over the last epoch's minibatches
    float train_acc;       // top-1 on the (standardised) training set after training
} ProbeStats;

// Labels in [0, classes). ftr [ntr, dim], fte [nte, dim] are not modified. stats may be NULL.
// Deterministic given o->seed and the thread count.
float linear_probe(const float *ftr, const int *ytr, int ntr, const float *fte, const int *yte, int nte, int dim,
                   int classes, const ProbeOpts *o, ProbeStats *stats);

// The held-out part of a weight-decay search over ntr training rows: nval = round(val_frac * ntr) rows,
// or -1 if that would leave the validation or the fitting part empty.
int probe_val_count(int ntr, float val_frac);

// Validation-tuned linear probe: each weight decay in wds[nwd] is trained (o otherwise) on the first
// ntr - nval training rows and scored on the last nval = round(val_frac * ntr); the best one (ties: the
// earlier in the list) is then trained on all ntr rows and scored on the test set, which it returns.
// val_acc[nwd] receives the validation accuracies, *best_wd the choice. Fatal if either part would be empty.
float linear_probe_tuned(const float *ftr, const int *ytr, int ntr, const float *fte, const int *yte, int nte,
                         int dim, int classes, const ProbeOpts *o, const float *wds, int nwd, float val_frac,
                         float *val_acc, float *best_wd, ProbeStats *stats);

// Features are centred by the training mean and L2-normalised (norm floored at 1e-12); each test
// sample's k most cosine-similar training samples (ties: lower index first) vote for their class with
// weight exp(sim / temperature) (DINO: temperature 0.07); the largest sum wins (ties: lower class).
// k is capped at ntr. Similarities in blocks of test rows with cblas_sgemm.
float knn_accuracy(const float *ftr, const int *ytr, int ntr, const float *fte, const int *yte, int nte, int dim,
                   int classes, int k, float temperature);
