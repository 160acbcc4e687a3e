// The run configuration's field table and everything it drives (config.h): defaults, flags, JSON, --resume,
// validation.
#include "config/config.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "data/dataset.h"
#include "loss/dispersive.h"

#define MEMBER(m) offsetof(TrainConfig, m), sizeof(((TrainConfig *)0)->m)
#define OBJECTIVES "sit_linear|sit_gvp|ddpm|ldae|denoise"

// Every setting, once. Columns: flag, JSON key, in "model", type, member, range, choices, role, default, help.
// (The order is the JSON's and --help's.)
const ConfigField train_fields[] = {
    // the model (JSON "model"); in_channels, input_size and num_classes come from the data
    {"depth", "depth", 1, ARG_INT, MEMBER(model.depth), 1, 256, NULL, FIELD_KEPT, "6", "number of transformer blocks"},
    {"hidden", "hidden", 1, ARG_INT, MEMBER(model.hidden), 4, 16384, NULL, FIELD_KEPT, "192", "hidden size (multiple of 4 and of heads)"},
    {"heads", "heads", 1, ARG_INT, MEMBER(model.heads), 1, 256, NULL, FIELD_KEPT, "3", "attention heads"},
    {"patch", "patch", 1, ARG_INT, MEMBER(model.patch), 1, 64, NULL, FIELD_KEPT, "4", "patch size"},
    {NULL, "in_channels", 1, ARG_INT, MEMBER(model.in_channels), 1, 4096, NULL, FIELD_KEPT, "1", "image channels (from the data)"},
    {NULL, NULL, 1, ARG_INT, MEMBER(model.height), 1, 65536, NULL, FIELD_KEPT, "28", "image height (from the data; JSON input_size[0])"},
    {NULL, NULL, 1, ARG_INT, MEMBER(model.width), 1, 65536, NULL, FIELD_KEPT, "28", "image width (from the data; JSON input_size[1])"},
    {NULL, "num_classes", 1, ARG_INT, MEMBER(model.num_classes), 0, 1000000, NULL, FIELD_KEPT, "10", "classes (from the data; 0 = unconditional)"},
    {"learn-sigma", "learn_sigma", 1, ARG_BOOL, MEMBER(model.learn_sigma), 0, 1, NULL, FIELD_KEPT, "0", "double the output channels (ignored by the loss)"},
    {NULL, "mlp_ratio", 1, ARG_INT, MEMBER(model.mlp_ratio), 1, 64, NULL, FIELD_KEPT, "4", "MLP width / hidden size"},
    // the objective
    {"label-dropout", "label_dropout", 0, ARG_FLOAT, MEMBER(label_dropout), 0, 1, NULL, FIELD_KEPT, "0.1", "probability of the null label (classifier-free guidance)"},
    {"objective", "objective", 0, ARG_STR, MEMBER(objective), 0, 0, OBJECTIVES, FIELD_KEPT, "sit_linear", "sit_linear | sit_gvp | ddpm | ldae (l-DAE: needs --pca, unconditional) | denoise (the l-DAE trajectory, next five flags)"},
    {"pca", "pca", 0, ARG_STR, MEMBER(pca), 0, 0, NULL, FIELD_KEPT, "", "--objective ldae or --tokenizer pca: PCA tokenizer of ddm pca (embedded in the checkpoint)"},
    {"noise", "noise", 0, ARG_STR, MEMBER(noise), 0, 0, "|ddpm_linear|gamma2_linear|sigma_linear", FIELD_KEPT, "", "denoise: ddpm_linear (default) | gamma2_linear | sigma_linear (gamma 1, sigma 0..sqrt 2)"},
    {"tokenizer", "tokenizer", 0, ARG_STR, MEMBER(tokenizer), 0, 0, "|pixel|pca", FIELD_KEPT, "", "denoise: pixel (default) | pca (noise in the PCA latent of --pca; x_t by inverse PCA)"},
    {"target", "target", 0, ARG_STR, MEMBER(target), 0, 0, "|noise|latent|image", FIELD_KEPT, "", "denoise: noise (default) | latent (clean PCA latent) | image (the original image)"},
    {"pca-output", "pca_output", 0, ARG_STR, MEMBER(pca_output), 0, 0, "|image|latent", FIELD_KEPT, "", "denoise: image (default: loss in pixels) | latent (loss on the output's PCA latent)"},
    {"loss-weight", "loss_weight", 0, ARG_STR, MEMBER(loss_weight), 0, 0, "|mse|ldae", FIELD_KEPT, "", "denoise: mse (default) | ldae (lambda_t, w_i = 1 / 0.1 in the full PCA basis)"},
    {"single-noise-level", "single_noise_level", 0, ARG_FLOAT, MEMBER(single_t), -1, 1000, NULL, FIELD_KEPT, "-1", "every sample uses this t (-1 = sampled, the default)"},
    {"encoder-depth", "encoder_depth", 0, ARG_INT, MEMBER(encoder_depth), 0, 256, NULL, FIELD_KEPT, "0", "blocks in the encoder (0 = depth/2); ddm probe --block encoder reads its last"},
    // Dispersive Loss
    {"disp", "disp_variant", 0, ARG_STR, MEMBER(disp_variant), 0, 0, "none" DISP_VARIANTS(DISP_BAR), FIELD_KEPT, "none", "Dispersive Loss: none | infonce_l2 | infonce_cos | hinge | covariance"},
    {"disp-lambda", "disp_lambda", 0, ARG_FLOAT, MEMBER(disp_lambda), 0, 1e6, NULL, FIELD_KEPT, "0.5", "weight of the Dispersive Loss"},
    {"disp-tau", "disp_tau", 0, ARG_FLOAT, MEMBER(disp_tau), 1e-6, 1e6, NULL, FIELD_KEPT, "0.5", "temperature (InfoNCE variants)"},
    {"disp-eps", "disp_eps", 0, ARG_FLOAT, MEMBER(disp_eps), 0, 1e6, NULL, FIELD_KEPT, "1", "margin (hinge)"},
    {"disp-blocks", "disp_blocks", 0, ARG_STR, MEMBER(disp_blocks), 0, 0, NULL, FIELD_KEPT, "depth/4", "blocks read: depth/4 | last | all | N[,M..] (0-based)"},
    {"disp-gather", "disp_gather", 0, ARG_BOOL, MEMBER(disp_gather), 0, 1, NULL, FIELD_OVERRIDE, "0", "data parallel (mpirun): the Dispersive Loss sees the global batch, all-gathered from the ranks, with each rank's samples getting their gradient (default: each rank's own batch, as the reference code)"},
    // optimisation
    {"steps", "steps", 0, ARG_INT, MEMBER(steps), 1, TRAIN_MAX_STEPS, NULL, FIELD_OVERRIDE, "1000", "total training steps"},
    {"batch", "batch", 0, ARG_INT, MEMBER(batch), 1, 65536, NULL, FIELD_KEPT, "64", "batch size"},
    {"lr", "lr", 0, ARG_FLOAT, MEMBER(lr), 0, 10, NULL, FIELD_KEPT, "1e-4", "peak learning rate"},
    {"beta1", "beta1", 0, ARG_FLOAT, MEMBER(beta1), 0, 0.999999, NULL, FIELD_KEPT, "0.9", "AdamW beta1"},
    {"beta2", "beta2", 0, ARG_FLOAT, MEMBER(beta2), 0, 0.999999, NULL, FIELD_KEPT, "0.999", "AdamW beta2"},
    {"wd", "weight_decay", 0, ARG_FLOAT, MEMBER(weight_decay), 0, 10, NULL, FIELD_KEPT, "0", "AdamW weight decay"},
    {"adam-eps", "adam_eps", 0, ARG_FLOAT, MEMBER(adam_eps), 1e-12, 1, NULL, FIELD_KEPT, "1e-8", "AdamW epsilon"},
    {"clip", "clip", 0, ARG_FLOAT, MEMBER(clip), 0, 1e6, NULL, FIELD_KEPT, "0", "gradient clipping max norm (0 = off)"},
    {"schedule", "schedule", 0, ARG_STR, MEMBER(schedule), 0, 0, "constant|cosine", FIELD_KEPT, "constant", "constant | cosine (after --warmup)"},
    {"warmup", "warmup", 0, ARG_INT, MEMBER(warmup), 0, 1e9, NULL, FIELD_KEPT, "0", "linear warmup steps"},
    {"lr-min", "lr_min", 0, ARG_FLOAT, MEMBER(lr_min), 0, 10, NULL, FIELD_KEPT, "0", "final learning rate of the cosine schedule"},
    {"ema", "ema_decay", 0, ARG_FLOAT, MEMBER(ema_decay), 0, 1, NULL, FIELD_KEPT, "0.9999", "EMA decay per step"},
    {"seed", "seed", 0, ARG_U64, MEMBER(seed), 0, 1.8e19, NULL, FIELD_KEPT, "0", "random seed"},
    // data
    {"data", "data", 0, ARG_STR, MEMBER(data.path), 0, 0, NULL, FIELD_OVERRIDE, DDM_FASHION_MNIST_DIR, "dataset: an IDX directory or file (MNIST-like), an ImageFolder (one sub-folder per class; DIR/train + DIR/val splits), CIFAR-10/100 binary batches, or latents (.npy/.npz [N,C,H,W], or fast-DiT's X_features/ + X_labels/ folders); docs/data.md"},
    {"data-format", "data_format", 0, ARG_STR, MEMBER(data.format), 0, 0, "|auto|idx|imagefolder|cifar|latents", FIELD_OVERRIDE, "", "auto (detected) | idx | imagefolder | cifar | latents"},
    {"image-size", "image_size", 0, ARG_INT, MEMBER(data.image_size), 0, 65536, NULL, FIELD_KEPT, "0", "ImageFolder: resize the short side and centre-crop to S x S (ADM's center_crop_arr); 0 = the images' own size"},
    {"data-labels", "data_labels", 0, ARG_STR, MEMBER(data.labels), 0, 0, NULL, FIELD_OVERRIDE, "", "latents in one .npy: their labels .npy (default: <stem>_labels.npy or labels.npy beside it)"},
    {"data-classes", "data_classes", 0, ARG_INT, MEMBER(data.classes), 0, DATA_MAX_CLASSES, NULL, FIELD_OVERRIDE, "0", "the number of classes the labels lie in (labels 0..K-1; a subset may leave some empty); 0 = 0 .. the largest label, every one with a sample"},
    {"latent-scale", "latent_scale", 0, ARG_STR, MEMBER(data.scale), 0, 0, NULL, FIELD_KEPT, "", "latents: x = (v - shift) * scale, one value or one per channel, e.g. 0.18215 for raw SD-VAE latents (fast-DiT's features are already scaled: keep 1) [1]"},
    {"latent-shift", "latent_shift", 0, ARG_STR, MEMBER(data.shift), 0, 0, NULL, FIELD_KEPT, "", "latents: the shift of --latent-scale, one value or one per channel [0]"},
    {"data-cache-mb", NULL, 0, ARG_INT, MEMBER(data.cache_mb), 0, 1 << 30, NULL, FIELD_RUNTIME, "1024", "ImageFolder: decoded images kept in memory, MiB"},
    {"flip", "flip", 0, ARG_BOOL, MEMBER(flip), 0, 1, NULL, FIELD_KEPT, "0", "random horizontal flips"},
    {"crop-scale", "crop_scale", 0, ARG_FLOAT, MEMBER(crop_scale), 0, 1, NULL, FIELD_KEPT, "0", "random resized crops (MAE-style): area fraction uniform in [S, 1], aspect 3/4..4/3, resized back bilinearly (0 = off)"},
    {"precision", "precision", 0, ARG_STR, MEMBER(precision), 0, 0, "fp32|bf16|auto", FIELD_OVERRIDE, "fp32", "fp32 | bf16: matrix multiplies in bf16 with fp32 accumulation (needs AVX512_BF16 on the CPU: an error otherwise, no fallback) | auto: bf16 where the device has it, else fp32; weights, optimizer state and all other math stay fp32; the precision used is recorded in the checkpoint (given with --resume: overrides it)"},
    // this invocation
    {"device", NULL, 0, ARG_STR, MEMBER(device), 0, 0, NULL, FIELD_RUNTIME, "", "cpu | cpu-isolated (a test device whose memory the host cannot read) | cuda (a CUDA build); default $DDM_DEVICE, else cpu"},
    {"threads", NULL, 0, ARG_INT, MEMBER(threads), 0, 1024, NULL, FIELD_RUNTIME, "0", "threads (0 = all cores)"},
    {"out", NULL, 0, ARG_STR, MEMBER(out_dir), 0, 0, NULL, FIELD_RUNTIME, "runs/default", "run directory (ckpt.safetensors, log.jsonl)"},
    {"log-every", NULL, 0, ARG_INT, MEMBER(log_every), 1, 1e9, NULL, FIELD_RUNTIME, "10", "steps between log lines"},
    {"ckpt-every", NULL, 0, ARG_INT, MEMBER(ckpt_every), 1, 1e9, NULL, FIELD_RUNTIME, "500", "steps between checkpoints"},
    {"keep-every", NULL, 0, ARG_INT, MEMBER(keep_every), 0, 1e9, NULL, FIELD_RUNTIME, "0", "also keep a copy ckpt_<step>.safetensors every this many steps (0 = none)"},
    {"keep-last", NULL, 0, ARG_INT, MEMBER(keep_last), 0, 1e9, NULL, FIELD_RUNTIME, "0", "also keep the last N checkpoints as ckpt_<step>.safetensors, deleting older ones (never ckpt.safetensors or a --keep-every milestone; 0 = none)"},
    {"nonfinite", NULL, 0, ARG_STR, MEMBER(nonfinite), 0, 0, "stop|skip", FIELD_RUNTIME, "stop", "a non-finite loss or gradient: stop (the last checkpoint kept) or skip the step's update (logged, at most --nonfinite-limit in a row)"},
    {"nonfinite-limit", NULL, 0, ARG_INT, MEMBER(nonfinite_limit), 1, 1e9, NULL, FIELD_RUNTIME, "10", "--nonfinite skip: stop after this many skipped steps in a row"},
    {"eval-every", NULL, 0, ARG_INT, MEMBER(eval_every), 0, 1e9, NULL, FIELD_RUNTIME, "0", "steps between sample-quality evaluations, FD-CNN of the EMA model logged as \"fd\" (0 = off)"},
    {"eval-classifier", NULL, 0, ARG_STR, MEMBER(eval_classifier), 0, 0, NULL, FIELD_RUNTIME, "", "--eval-every: the domain classifier of `ddm classifier train`"},
    {"eval-n", NULL, 0, ARG_INT, MEMBER(eval_n), 2, 1e7, NULL, FIELD_RUNTIME, "1000", "--eval-every: samples (and reference images) per evaluation"},
    {"eval-steps", NULL, 0, ARG_INT, MEMBER(eval_steps), 1, 100000, NULL, FIELD_RUNTIME, "25", "--eval-every: Heun steps per sample (DDPM: ancestral steps)"},
    {"tensorboard", NULL, 0, ARG_BOOL, MEMBER(tensorboard), 0, 1, NULL, FIELD_RUNTIME, "1", "also write TensorBoard event files (events.out.tfevents.*) beside log.jsonl: every logged number, and the sample grid of each --eval-every evaluation"},
    {"monitor-blocks", NULL, 0, ARG_STR, MEMBER(monitor_blocks), 0, 0, NULL, FIELD_RUNTIME, "", "blocks whose Dispersive mechanism is logged (feature rms, share of active pairs, Dispersive / diffusion gradient norms, effective rank), as --disp-blocks (default: the --disp-blocks blocks, also with --disp none)"},
    {"erank-every", NULL, 0, ARG_INT, MEMBER(erank_every), 0, 1e9, NULL, FIELD_RUNTIME, "500", "steps between effective-rank measurements of the monitored blocks on a fixed batch (0 = off)"},
    {"erank-n", NULL, 0, ARG_INT, MEMBER(erank_n), 2, 100000, NULL, FIELD_RUNTIME, "256", "images in the fixed effective-rank batch"},
    {"resume", NULL, 0, ARG_STR, MEMBER(resume), 0, 0, NULL, FIELD_RUNTIME, "", "continue from this checkpoint (its config wins; the run's total --steps too unless given)"},
};
const int train_field_count = sizeof train_fields / sizeof train_fields[0];

static ArgSpec spec_of(const ConfigField *f, TrainConfig *c) {
    return (ArgSpec){.name = f->flag ? f->flag : f->key ? f->key : "input_size", .type = f->type,
                     .dst = (char *)c + f->offset, .size = f->size, .min = f->min, .max = f->max, .help = f->help,
                     .choices = f->choices};
}

void train_config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < train_field_count; i++) {
        ArgSpec s = spec_of(&train_fields[i], c);
        args_set(&s, train_fields[i].def, "default: ");
    }
}

int train_config_specs(TrainConfig *c, ArgSpec *out, int max) {
    int n = 0;
    for (int i = 0; i < train_field_count && n < max; i++)
        if (train_fields[i].flag) out[n++] = spec_of(&train_fields[i], c);
    return n;
}

// ---------------------------------------------------------------- JSON

static const void *field_ptr(const ConfigField *f, const TrainConfig *c) { return (const char *)c + f->offset; }

char *train_config_to_json(const TrainConfig *c) {
    cJSON *root = cJSON_CreateObject(), *sec[2];
    sec[1] = cJSON_AddObjectToObject(root, "model");
    sec[0] = cJSON_AddObjectToObject(root, "train");
    for (int i = 0; i < train_field_count; i++) {
        const ConfigField *f = &train_fields[i];
        const void *v = field_ptr(f, c);
        if (!f->key) {
            if (f->offset == offsetof(TrainConfig, model.height)) {   // the one array: input_size = [height, width]
                cJSON *size = cJSON_AddArrayToObject(sec[1], "input_size");
                cJSON_AddItemToArray(size, cJSON_CreateNumber(c->model.height));
                cJSON_AddItemToArray(size, cJSON_CreateNumber(c->model.width));
            }
            continue;
        }
        cJSON *o = sec[f->in_model];
        char buf[32];
        switch (f->type) {
        case ARG_INT: cJSON_AddNumberToObject(o, f->key, *(const int *)v); break;
        case ARG_FLOAT: cJSON_AddNumberToObject(o, f->key, *(const float *)v); break;
        case ARG_BOOL: cJSON_AddBoolToObject(o, f->key, *(const int *)v); break;
        case ARG_STR: cJSON_AddStringToObject(o, f->key, (const char *)v); break;
        case ARG_U64:   // as a string: a double cannot hold every 64-bit seed
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)*(const uint64_t *)v);
            cJSON_AddStringToObject(o, f->key, buf);
            break;
        }
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

// One JSON value through the flag parser: its text, as a flag would be given.
static void set_from_json(const ConfigField *f, TrainConfig *c, const cJSON *it, const char *section, const char *where) {
    char text[64], at[600];
    snprintf(at, sizeof at, "%s: config %s.%s: ", where, section, f->key ? f->key : "input_size");
    ArgSpec s = spec_of(f, c);
    const char *v = NULL;
    if (cJSON_IsString(it)) v = it->valuestring;
    else if (cJSON_IsBool(it)) v = cJSON_IsTrue(it) ? "1" : "0";
    else if (cJSON_IsNumber(it)) { snprintf(text, sizeof text, "%.17g", it->valuedouble); v = text; }
    if (!v) ddm_fatal("%sexpected a %s", at, f->type == ARG_STR || f->type == ARG_U64 ? "string" : "number");
    if ((f->type == ARG_STR || f->type == ARG_U64) != (cJSON_IsString(it) != 0))
        ddm_fatal("%s'%s': expected a %s", at, v, f->type == ARG_STR || f->type == ARG_U64 ? "string" : "number");
    args_set(&s, v, at);
}

// Keys of one section: every one must be a field of that section.
static void read_section(TrainConfig *c, const cJSON *o, int in_model, const char *section, const char *where) {
    for (const cJSON *it = o ? o->child : NULL; it; it = it->next) {
        const ConfigField *f = NULL;
        for (int i = 0; i < train_field_count && !f; i++)
            if (train_fields[i].key && train_fields[i].in_model == in_model && !strcmp(train_fields[i].key, it->string))
                f = &train_fields[i];
        if (f) { set_from_json(f, c, it, section, where); continue; }
        if (in_model && !strcmp(it->string, "input_size")) {
            if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2)
                ddm_fatal("%s: config model.input_size: expected [height, width]", where);
            for (int k = 0; k < 2; k++)
                for (int i = 0; i < train_field_count; i++)
                    if (train_fields[i].offset == (k ? offsetof(TrainConfig, model.width) : offsetof(TrainConfig, model.height)))
                        set_from_json(&train_fields[i], c, cJSON_GetArrayItem(it, k), section, where);
            continue;
        }
        ddm_fatal("%s: config %s.%s: unknown setting (written by another version of ddm?)", where, section, it->string);
    }
}

int train_config_from_json(TrainConfig *c, const char *json, const char *where) {
    train_config_defaults(c);
    cJSON *root = cJSON_Parse(json);
    const cJSON *model = root ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    if (!cJSON_IsObject(model)) { cJSON_Delete(root); return 0; }
    read_section(c, model, 1, "model", where);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "train");   // a checkpoint written by another program
    if (t && !cJSON_IsObject(t)) ddm_fatal("%s: config \"train\" is not an object", where);   // may carry only the model
    read_section(c, t, 0, "train", where);
    cJSON_Delete(root);
    char at[600];
    snprintf(at, sizeof at, "%s: config: ", where);
    train_config_check(c, at);
    return 1;
}

// ---------------------------------------------------------------- rules between fields

void train_config_check(const TrainConfig *c, const char *where) {
    ddm_error_context(where && *where ? where : NULL);
    const char *err = dit_config_error(&c->model);
    if (err) ddm_fatal("model: %s", err);
    TrainConfig copy = *c;   // the checks resolve some fields; the caller's config is left as it is
    train_encoder_depth(&copy);
    int blocks[DISP_MAX_BLOCKS];
    train_disp_blocks(&copy, blocks);
    Objective o;
    train_objective_setup(&copy, &o);
    if (copy.monitor_blocks[0]) {
        snprintf(copy.disp_blocks, sizeof copy.disp_blocks, "%s", copy.monitor_blocks);
        train_disp_blocks(&copy, blocks);
    }
    ddm_error_context(NULL);
}

// ---------------------------------------------------------------- the resolved configuration file

void train_config_write(const TrainConfig *c, const char *path) {
    AtomicFile af = atomic_open(path);
    fprintf(af.f, "# The resolved configuration of this run (ddm train --config %s reads it back).\n", path);
    for (int i = 0; i < train_field_count; i++) {
        const ConfigField *f = &train_fields[i];
        if (!f->flag || !strcmp(f->flag, "resume")) continue;
        const void *v = field_ptr(f, c);
        switch (f->type) {
        case ARG_INT: case ARG_BOOL: fprintf(af.f, "%s = %d\n", f->flag, *(const int *)v); break;
        case ARG_FLOAT: fprintf(af.f, "%s = %.9g\n", f->flag, *(const float *)v); break;
        case ARG_U64: fprintf(af.f, "%s = %llu\n", f->flag, (unsigned long long)*(const uint64_t *)v); break;
        case ARG_STR:
            if (*(const char *)v) fprintf(af.f, "%s = %s\n", f->flag, (const char *)v);
            break;
        }
    }
    if (c->model.num_classes == 0) fprintf(af.f, "unconditional = 1\n");
    atomic_commit(&af);
}

// ---------------------------------------------------------------- --resume

static int same_value(const ConfigField *f, const TrainConfig *a, const TrainConfig *b) {
    return f->type == ARG_STR ? !strcmp((const char *)field_ptr(f, a), (const char *)field_ptr(f, b))
                              : !memcmp(field_ptr(f, a), field_ptr(f, b), f->size);
}

static int given(const ConfigField *f, const ArgSpec *specs, int n) {
    for (int i = 0; i < n; i++)
        if (f->flag && !strcmp(specs[i].name, f->flag)) return specs[i].seen;
    return 0;
}

void train_config_resume(TrainConfig *c, const TrainConfig *ck, const ArgSpec *specs, int nspecs, const char *ckpt) {
    TrainConfig r = *ck;
    for (int i = 0; i < train_field_count; i++) {
        const ConfigField *f = &train_fields[i];
        int cli = given(f, specs, nspecs);
        if (f->role == FIELD_RUNTIME || (f->role == FIELD_OVERRIDE && cli)) {
            memcpy((char *)&r + f->offset, field_ptr(f, c), f->size);
        } else if (f->role == FIELD_KEPT && cli && !same_value(f, c, ck)) {
            ddm_fatal("--%s: %s continues its run as it was configured and cannot change it (drop the flag, or start a "
                      "new run)", f->flag, ckpt);
        }
    }
    *c = r;
}

int train_encoder_depth(const TrainConfig *c) {
    int depth = c->model.depth, k = c->encoder_depth;
    if (k == 0) k = depth / 2 > 0 ? depth / 2 : 1;
    if (k < 1 || k > depth) ddm_fatal("--encoder-depth %d: expected 1 to the depth %d", k, depth);
    return k;
}

// "last", "all", "depth/4" (the paper's default: block number depth/4 counted from 1), "N" or "N,M,...".
int train_disp_blocks(const TrainConfig *c, int *blocks) {
    int depth = c->model.depth, n = 0;
    const char *s = c->disp_blocks;
    if (strcmp(s, "last") == 0) { blocks[0] = depth - 1; return 1; }
    if (strcmp(s, "depth/4") == 0) { blocks[0] = depth / 4 > 0 ? depth / 4 - 1 : 0; return 1; }
    if (strcmp(s, "all") == 0) {
        for (int k = 0; k < depth && k < DISP_MAX_BLOCKS; k++) blocks[n++] = k;
        return n;
    }
    const char *p = s;
    while (*p) {
        char *end;
        long k = strtol(p, &end, 10);
        if (end == p || k < 0 || k >= depth || n == DISP_MAX_BLOCKS)
            ddm_fatal("--disp-blocks '%s': expected 'last', 'all', 'depth/4' or 0-based block indices in [0, %d] "
                      "separated by commas", s, depth - 1);
        blocks[n++] = (int)k;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') ddm_fatal("--disp-blocks '%s': unexpected '%c'", s, *end);
    }
    if (!n) ddm_fatal("--disp-blocks is empty");
    return n;
}

void train_objective_setup(TrainConfig *c, Objective *o) {
    int kind = objective_parse(c->objective);
    if (kind < 0) ddm_fatal("--objective '%s': expected sit_linear, sit_gvp, ddpm, ldae or denoise", c->objective);
    objective_init(o, (ObjectiveKind)kind);
    struct { char *v; size_t n; const char *flag; } f[5] = {
        {c->noise, sizeof c->noise, "--noise"}, {c->tokenizer, sizeof c->tokenizer, "--tokenizer"},
        {c->target, sizeof c->target, "--target"}, {c->pca_output, sizeof c->pca_output, "--pca-output"},
        {c->loss_weight, sizeof c->loss_weight, "--loss-weight"}};
    int val[5] = {o->dn.noise, o->dn.tokenizer, o->dn.target, o->dn.output, o->dn.weight};
    if (kind == OBJ_DENOISE) {
        const char *err = objective_set_denoise(o, c->noise, c->tokenizer, c->target, c->pca_output, c->loss_weight);
        if (err) ddm_fatal("%s", err);
        int now[5] = {o->dn.noise, o->dn.tokenizer, o->dn.target, o->dn.output, o->dn.weight};
        for (int i = 0; i < 5; i++) snprintf(f[i].v, f[i].n, "%s", denoise_setting_name(i, now[i]));
    } else {
        for (int i = 0; i < 5; i++) {
            if (!f[i].v[0]) {
                if (kind == OBJ_LDAE) snprintf(f[i].v, f[i].n, "%s", denoise_setting_name(i, val[i]));
            } else if (kind != OBJ_LDAE) {
                ddm_fatal("%s is only used with --objective denoise (got --objective %s)", f[i].flag, c->objective);
            } else if (strcmp(f[i].v, denoise_setting_name(i, val[i])) != 0) {
                ddm_fatal("%s %s: --objective ldae fixes it to %s (use --objective denoise to change it)", f[i].flag,
                          f[i].v, denoise_setting_name(i, val[i]));
            }
        }
    }
    if (c->single_t >= 0) {
        const char *err = objective_t_error((ObjectiveKind)kind, c->single_t);
        if (err) ddm_fatal("--single-noise-level %g: %s", c->single_t, err);
        o->single_t = c->single_t;
    } else if (c->single_t != -1) {
        ddm_fatal("--single-noise-level %g: expected -1 (off) or a noise level of the objective", c->single_t);
    }
}
