// The training loop: data -> objective -> model -> (Dispersive Loss) -> backward -> clip -> AdamW -> EMA,
// with logging, atomic checkpoints and bit-exact resume.
#pragma once
#include <stdint.h>
#include "data/dataset.h"
#include "loss/objective.h"
#include "nn/dit.h"
#include "train/step.h"

typedef struct {
    DitConfig model;
    char objective[16];          // sit_linear | sit_gvp | ddpm | ldae | denoise
    char pca[512];               // ldae, denoise --tokenizer pca: the PCA tokenizer it was started with (the
                                 // checkpoint embeds a copy)
    // denoise settings (src/loss/objective.h); "" = unset: denoise fills its defaults, ldae its fixed
    // values, the other objectives leave them empty
    char noise[16];              // ddpm_linear | gamma2_linear | sigma_linear
    char tokenizer[8];           // pixel | pca
    char target[8];              // noise | latent | image
    char pca_output[8];          // image | latent
    char loss_weight[8];         // mse | ldae
    float single_t;              // >= 0: every sample uses this noise level (--single-noise-level); -1 = sampled
    int encoder_depth;           // blocks 0..encoder_depth-1 are the encoder (0 = depth/2, at least 1)
    float label_dropout;         // probability of replacing a label by the null class (conditional only)
    // Dispersive Loss
    char disp_variant[16];       // none | infonce_l2 | infonce_cos | hinge | covariance
    float disp_lambda, disp_tau, disp_eps;
    char disp_blocks[64];        // "last", "all", "N" or "N,M,..." (0-based block indices)
    // optimisation
    int steps, batch;
    float lr, beta1, beta2, weight_decay, adam_eps, clip;
    char schedule[16];           // constant | cosine (linear warmup, then cosine to lr_min)
    int warmup;
    float lr_min;
    float ema_decay;
    uint64_t seed;
    // data
    char data[512];              // directory with Fashion-MNIST IDX files
    int flip;                    // random horizontal flips
    float crop_scale;            // random resized crops of area fraction [crop_scale, 1] (0 = off)
    // output
    char out_dir[512];
    int log_every, ckpt_every;
    int keep_every;        // also keep ckpt_<step>.safetensors every this many steps (0 = never); not in the config
    char resume[512];            // checkpoint to continue from ("" = fresh run)
    // periodic sample quality (src/train/train_eval.h); not part of the stored config
    int eval_every;              // 0 = off
    int eval_n, eval_steps;
    char eval_classifier[512];
    // the Dispersive mechanism monitor (src/train/monitor.h); not part of the stored config
    char monitor_blocks[64];     // "" = the Dispersive blocks (--disp-blocks, also when the loss is off)
    int erank_every, erank_n;    // effective rank on a fixed batch of erank_n images every erank_every steps
    // compute
    char precision[8];           // fp32 | bf16: matrix multiplies in bf16 with fp32 accumulation (ops_cpu_bf16);
                                 // weights, optimizer state and all other math stay fp32
} TrainConfig;

void train_config_defaults(TrainConfig *c);
// The config as one JSON object {"model": {...}, "train": {...}} (stored in checkpoint metadata).
char *train_config_to_json(const TrainConfig *c);
// Fills c from that JSON; returns 0 if a field is missing or malformed.
int train_config_from_json(TrainConfig *c, const char *json);
// encoder_depth, with 0 resolved to depth/2 (at least 1); fatal unless in 1..depth.
int train_encoder_depth(const TrainConfig *c);
// Resolves disp_blocks into 0-based indices; fatal with a clear message when malformed.
int train_disp_blocks(const TrainConfig *c, int *blocks);

// Checks and resolves the objective settings of c (fills the denoise fields as described above) and sets
// up o (without its tokenizer: objective_set_pca when objective_uses_pca). Fatal one line on a bad name,
// a meaningless combination, a denoise setting given to another objective or a bad single noise level.
void train_objective_setup(TrainConfig *c, Objective *o);

// Runs training; returns 0 on success. Fatal (exit 1) on bad input or a non-finite loss.
int train_run(TrainConfig *c);
