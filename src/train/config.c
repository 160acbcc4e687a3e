// TrainConfig defaults and its JSON form (the "config" metadata of every checkpoint).
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "loss/dispersive.h"
#include "train/train.h"

void train_config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    // A small SiT that learns Fashion-MNIST in minutes on two cores (README's main command).
    c->model = (DitConfig){.depth = 6, .hidden = 192, .heads = 3, .patch = 4, .in_channels = 1,
                           .height = 28, .width = 28, .num_classes = 10, .learn_sigma = 0, .mlp_ratio = 4};
    strcpy(c->objective, "sit_linear");
    c->single_t = -1;
    c->label_dropout = 0.1f;
    strcpy(c->disp_variant, "none");
    c->disp_lambda = 0.5f;
    c->disp_tau = 0.5f;
    c->disp_eps = 1.0f;
    strcpy(c->disp_blocks, "depth/4");
    c->steps = 1000;
    c->batch = 64;
    c->lr = 1e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->weight_decay = 0;
    c->adam_eps = 1e-8f;
    c->clip = 0;
    strcpy(c->schedule, "constant");
    c->warmup = 0;
    c->lr_min = 0;
    c->ema_decay = 0.9999f;
    c->seed = 0;
    strcpy(c->data, DDM_FASHION_MNIST_DIR);
    c->flip = 0;
    c->crop_scale = 0;
    strcpy(c->out_dir, "runs/default");
    c->log_every = 10;
    c->ckpt_every = 500;
    c->eval_n = 1000;
    c->erank_every = 500;
    c->erank_n = 256;
    c->eval_steps = 25;
    strcpy(c->precision, "fp32");
}

static cJSON *model_json(const DitConfig *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "depth", m->depth);
    cJSON_AddNumberToObject(o, "hidden", m->hidden);
    cJSON_AddNumberToObject(o, "heads", m->heads);
    cJSON_AddNumberToObject(o, "patch", m->patch);
    cJSON_AddNumberToObject(o, "in_channels", m->in_channels);
    cJSON *size = cJSON_AddArrayToObject(o, "input_size");
    cJSON_AddItemToArray(size, cJSON_CreateNumber(m->height));
    cJSON_AddItemToArray(size, cJSON_CreateNumber(m->width));
    cJSON_AddNumberToObject(o, "num_classes", m->num_classes);
    cJSON_AddBoolToObject(o, "learn_sigma", m->learn_sigma);
    cJSON_AddNumberToObject(o, "mlp_ratio", m->mlp_ratio);
    return o;
}

char *train_config_to_json(const TrainConfig *c) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "model", model_json(&c->model));
    cJSON *t = cJSON_AddObjectToObject(root, "train");
    cJSON_AddStringToObject(t, "objective", c->objective);
    cJSON_AddStringToObject(t, "pca", c->pca);
    cJSON_AddStringToObject(t, "noise", c->noise);
    cJSON_AddStringToObject(t, "tokenizer", c->tokenizer);
    cJSON_AddStringToObject(t, "target", c->target);
    cJSON_AddStringToObject(t, "pca_output", c->pca_output);
    cJSON_AddStringToObject(t, "loss_weight", c->loss_weight);
    cJSON_AddNumberToObject(t, "single_noise_level", c->single_t);
    cJSON_AddNumberToObject(t, "encoder_depth", c->encoder_depth);
    cJSON_AddNumberToObject(t, "label_dropout", c->label_dropout);
    cJSON_AddStringToObject(t, "disp_variant", c->disp_variant);
    cJSON_AddNumberToObject(t, "disp_lambda", c->disp_lambda);
    cJSON_AddNumberToObject(t, "disp_tau", c->disp_tau);
    cJSON_AddNumberToObject(t, "disp_eps", c->disp_eps);
    cJSON_AddStringToObject(t, "disp_blocks", c->disp_blocks);
    cJSON_AddNumberToObject(t, "steps", c->steps);
    cJSON_AddNumberToObject(t, "batch", c->batch);
    cJSON_AddNumberToObject(t, "lr", c->lr);
    cJSON_AddNumberToObject(t, "beta1", c->beta1);
    cJSON_AddNumberToObject(t, "beta2", c->beta2);
    cJSON_AddNumberToObject(t, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(t, "adam_eps", c->adam_eps);
    cJSON_AddNumberToObject(t, "clip", c->clip);
    cJSON_AddStringToObject(t, "schedule", c->schedule);
    cJSON_AddNumberToObject(t, "warmup", c->warmup);
    cJSON_AddNumberToObject(t, "lr_min", c->lr_min);
    cJSON_AddNumberToObject(t, "ema_decay", c->ema_decay);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    cJSON_AddStringToObject(t, "seed", seed);
    cJSON_AddStringToObject(t, "data", c->data);
    cJSON_AddBoolToObject(t, "flip", c->flip);
    cJSON_AddNumberToObject(t, "crop_scale", c->crop_scale);
    cJSON_AddStringToObject(t, "precision", c->precision);
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static int get_num(cJSON *o, const char *k, double *v) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(it)) { *v = cJSON_IsTrue(it); return 1; }
    if (!cJSON_IsNumber(it)) return 0;
    *v = it->valuedouble;
    return 1;
}

static int get_str(cJSON *o, const char *k, char *dst, size_t n) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= n) return 0;
    strcpy(dst, it->valuestring);
    return 1;
}

static int model_from_json(DitConfig *m, cJSON *o) {
    double v[8];
    const char *keys[] = {"depth", "hidden", "heads", "patch", "in_channels", "num_classes", "learn_sigma"};
    for (int i = 0; i < 7; i++) if (!get_num(o, keys[i], &v[i])) return 0;
    cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "input_size");
    if (cJSON_GetArraySize(size) != 2) return 0;
    m->depth = (int)v[0]; m->hidden = (int)v[1]; m->heads = (int)v[2]; m->patch = (int)v[3];
    m->in_channels = (int)v[4]; m->num_classes = (int)v[5]; m->learn_sigma = (int)v[6];
    m->height = cJSON_GetArrayItem(size, 0)->valueint;
    m->width = cJSON_GetArrayItem(size, 1)->valueint;
    m->mlp_ratio = get_num(o, "mlp_ratio", &v[7]) ? (int)v[7] : 4;
    return dit_config_error(m) == NULL;
}

int train_config_from_json(TrainConfig *c, const char *json) {
    train_config_defaults(c);
    cJSON *root = cJSON_Parse(json);
    if (!root) return 0;
    int ok = model_from_json(&c->model, cJSON_GetObjectItemCaseSensitive(root, "model"));
    cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "train");
    if (ok && t) {   // a checkpoint written by another program may carry only the model
        double v;
        char seed[32];
        get_str(t, "objective", c->objective, sizeof c->objective);
        get_str(t, "pca", c->pca, sizeof c->pca);
        get_str(t, "noise", c->noise, sizeof c->noise);
        get_str(t, "tokenizer", c->tokenizer, sizeof c->tokenizer);
        get_str(t, "target", c->target, sizeof c->target);
        get_str(t, "pca_output", c->pca_output, sizeof c->pca_output);
        get_str(t, "loss_weight", c->loss_weight, sizeof c->loss_weight);
        if (get_num(t, "single_noise_level", &v)) c->single_t = (float)v;
        if (get_num(t, "encoder_depth", &v)) c->encoder_depth = (int)v;
        if (get_num(t, "label_dropout", &v)) c->label_dropout = (float)v;
        get_str(t, "disp_variant", c->disp_variant, sizeof c->disp_variant);
        if (get_num(t, "disp_lambda", &v)) c->disp_lambda = (float)v;
        if (get_num(t, "disp_tau", &v)) c->disp_tau = (float)v;
        if (get_num(t, "disp_eps", &v)) c->disp_eps = (float)v;
        get_str(t, "disp_blocks", c->disp_blocks, sizeof c->disp_blocks);
        if (get_num(t, "steps", &v)) c->steps = (int)v;
        if (get_num(t, "batch", &v)) c->batch = (int)v;
        if (get_num(t, "lr", &v)) c->lr = (float)v;
        if (get_num(t, "beta1", &v)) c->beta1 = (float)v;
        if (get_num(t, "beta2", &v)) c->beta2 = (float)v;
        if (get_num(t, "weight_decay", &v)) c->weight_decay = (float)v;
        if (get_num(t, "adam_eps", &v)) c->adam_eps = (float)v;
        if (get_num(t, "clip", &v)) c->clip = (float)v;
        get_str(t, "schedule", c->schedule, sizeof c->schedule);
        if (get_num(t, "warmup", &v)) c->warmup = (int)v;
        if (get_num(t, "lr_min", &v)) c->lr_min = (float)v;
        if (get_num(t, "ema_decay", &v)) c->ema_decay = (float)v;
        if (get_str(t, "seed", seed, sizeof seed)) c->seed = strtoull(seed, NULL, 10);
        get_str(t, "data", c->data, sizeof c->data);
        if (get_num(t, "flip", &v)) c->flip = (int)v;
        if (get_num(t, "crop_scale", &v)) c->crop_scale = (float)v;   // absent before the option: off
        get_str(t, "precision", c->precision, sizeof c->precision);   // absent before the option: fp32
    }
    cJSON_Delete(root);
    return ok;
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
