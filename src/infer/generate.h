// Drawing samples from a trained checkpoint with the sampler that fits its objective: shared by
// `ddm sample`, `ddm eval`, the training loop's periodic evaluation and `ddm bench`. The samplers run on the
// host (src/sample); the model runs on its device, and the denoise callback is the named place where the
// sampler's state goes up and the model's output comes down.
#pragma once
#include <stdint.h>
#include "config/config.h"
#include "nn/dit.h"

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
