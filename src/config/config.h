// The run configuration: every setting of a training run, described ONCE in a field table (train_fields in
// config.c) that drives `ddm train`'s flags and --help, config files (`--config`, `name = value`), the
// checkpoint's "config" metadata (JSON), what --resume keeps, and validation. A value from any of those sources
// goes through the same parser (config/args.c: type, range, choices), then train_config_check (the rules that
// tie fields together), before anything is built from it.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "config/args.h"
#include "data/data.h"
#include "loss/objective.h"
#include "nn/dit.h"

// A run trains at most this many steps (the bound of --steps, and of the step a checkpoint records).
#define TRAIN_MAX_STEPS 1000000000

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
    char disp_blocks[64];        // "last", "all", "depth/4", "N" or "N,M,..." (0-based block indices)
    int disp_gather;             // data parallel: the loss sees the all-gathered global batch (else each rank's own)
    // optimisation
    int steps, batch;
    float lr, beta1, beta2, weight_decay, adam_eps, clip;
    char schedule[16];           // constant | cosine (linear warmup, then cosine to lr_min)
    int warmup;
    float lr_min;
    float ema_decay;
    uint64_t seed;
    // data
    DataSpec data;               // the training data (data/data.h): path, format, image size, latents' labels/scale
    int flip;                    // random horizontal flips
    float crop_scale;            // random resized crops of area fraction [crop_scale, 1] (0 = off)
    // compute
    char precision[8];           // fp32 | bf16: matrix multiplies in bf16 with fp32 accumulation; weights,
                                 // optimizer state and all other math stay fp32
    // how this invocation runs (not stored in the checkpoint)
    char device[16];             // cpu | cpu-isolated | cuda ("" = $DDM_DEVICE or cpu)
    int threads;                 // 0 = all cores
    char out_dir[512];
    int log_every, ckpt_every;
    int keep_every;              // also keep ckpt_<step>.safetensors every this many steps (0 = never)
    int keep_last;               // also keep the last N checkpoints as ckpt_<step>.safetensors (0 = none)
    char nonfinite[8];           // stop | skip: what a non-finite loss or gradient does
    int nonfinite_limit;         // skip: stop after this many skipped steps in a row
    char resume[512];            // checkpoint to continue from ("" = fresh run)
    int eval_every;              // periodic sample quality (src/train/train_eval.h); 0 = off
    int eval_n, eval_steps;
    char eval_classifier[512];
    char monitor_blocks[64];     // the Dispersive mechanism monitor (train/monitor.h): "" = the Dispersive blocks
    int tensorboard;             // also write TensorBoard event files beside log.jsonl
    int erank_every, erank_n;    // effective rank on a fixed batch of erank_n images every erank_every steps
} TrainConfig;

// What --resume does with a field (and whether the checkpoint stores it).
typedef enum {
    FIELD_KEPT,      // stored; the checkpoint's value wins (given again with --resume, it must be equal)
    FIELD_OVERRIDE,  // stored; given with --resume, the command line wins (steps, precision, data)
    FIELD_RUNTIME,   // not stored: how this invocation runs (output, logging, evaluation, device, threads)
} FieldRole;

typedef struct {
    const char *flag;     // ddm train --flag; NULL for a stored value that comes from the data
    const char *key;      // key in the checkpoint's config JSON (in "model" or "train"); NULL if not stored
    int in_model;         // the key lives in "model" (else "train")
    ArgType type;
    size_t offset, size;  // of the member in TrainConfig (size: strings' buffer)
    double min, max;      // numbers: inclusive range
    const char *choices;  // strings: "a|b|c" (an empty item allows ""), NULL = free text
    FieldRole role;
    const char *def;      // default, as text
    const char *help;
} ConfigField;

extern const ConfigField train_fields[];
extern const int train_field_count;

void train_config_defaults(TrainConfig *c);
// The ArgSpec of every field that has a flag, bound to c (for `ddm train`'s parser); returns how many were
// written (at most max).
int train_config_specs(TrainConfig *c, ArgSpec *out, int max);
// The stored fields as one JSON object {"model": {...}, "train": {...}} (the checkpoint's "config" metadata).
char *train_config_to_json(const TrainConfig *c);
// Fills c from that JSON: defaults for absent keys (older checkpoints), every present value through the same
// parser as a flag (fatal, one line naming `where` and the key, on a wrong type, a value out of range or not one
// of the choices, or an unknown key), then train_config_check. Returns 0 (c untouched beyond defaults) if the
// JSON does not parse or has no "model" object.
int train_config_from_json(TrainConfig *c, const char *json, const char *where);
// The rules that tie fields together (heads divide hidden, patch divides the image size, encoder depth within the
// depth, Dispersive blocks that exist, objective settings that mean something, a single noise level of the
// objective, ...): fatal one line, prefixed by `where` ("" for the command line).
void train_config_check(const TrainConfig *c, const char *where);
// The run's resolved configuration as `name = value` lines (every setting that has a flag, --resume left out):
// written beside the checkpoints as config.conf, `ddm train --config` reads it back to the same run.
void train_config_write(const TrainConfig *c, const char *path);
// --resume: given the checkpoint's config ck, the command line's c and which flags the command line set (seen),
// makes c the run to continue: kept fields from ck (fatal if the command line gave a different value), override
// fields from the command line where given, runtime fields from the command line.
void train_config_resume(TrainConfig *c, const TrainConfig *ck, const ArgSpec *specs, int nspecs, const char *ckpt);

// encoder_depth, with 0 resolved to depth/2 (at least 1); fatal unless in 1..depth.
int train_encoder_depth(const TrainConfig *c);
// Resolves disp_blocks into 0-based indices; fatal with a clear message when malformed.
int train_disp_blocks(const TrainConfig *c, int *blocks);
// Checks and resolves the objective settings of c (fills the denoise fields as described above) and sets
// up o (without its tokenizer: objective_set_pca when objective_uses_pca). Fatal one line on a bad name,
// a meaningless combination, a denoise setting given to another objective or a bad single noise level.
void train_objective_setup(TrainConfig *c, Objective *o);
