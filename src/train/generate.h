// Drawing samples from a trained checkpoint with the sampler that fits its objective: shared by
// `ddm sample` and `ddm eval`.
#pragma once
#include <stdint.h>
#include "nn/dit.h"
#include "train/train.h"

typedef struct {
    char sampler[16];      // heun | euler | sde (SiT); ddpm | ddim (DDPM); "" = the objective's default
    int steps;             // 0 = 50 (SiT) or 250 (DDPM)
    float cfg_scale;       // 1 = no guidance
    int cls;               // a class for every sample; -1 random; -2 cycle through the classes
    int batch;             // samples per model call
    float eta, last_step;  // DDIM eta; SDE final noise-free step
    int clip_x0;           // DDPM/DDIM: clip the predicted x0
    uint64_t seed;
} GenerateOpts;

void generate_opts_defaults(GenerateOpts *o);
// Fills the defaults that depend on the checkpoint and rejects what does not fit it (one-line errors).
void generate_resolve(GenerateOpts *o, const Dit *m, const TrainConfig *tc, const char *ckpt);
// n samples [n, C, H, W] in the data's range (caller frees); their labels go to *labels if not NULL.
float *generate_samples(Dit *m, const TrainConfig *tc, const GenerateOpts *o, int n, int **labels);
