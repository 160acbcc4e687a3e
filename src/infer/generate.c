#include "infer/generate.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "rng.h"
#include "sample/sampler.h"

// The model on its device, for batches of at most `chunk`: inputs, times, labels, output and its first `in`
// channels per sample (learned-sigma channels dropped before the download).
typedef struct { Dit *m; int chunk; float *x, *t, *out, *kept; int *y; } ModelCtx;

static ModelCtx model_ctx(Dit *m, int chunk) {
    const DitConfig *c = &m->cfg;
    const Ops *o = m->ops;
    long hw = (long)c->height * c->width;
    return (ModelCtx){m, chunk, ops_alloc_f32(o, (size_t)chunk * c->in_channels * hw), ops_alloc_f32(o, chunk),
                      ops_alloc_f32(o, (size_t)chunk * dit_out_channels(c) * hw),
                      ops_alloc_f32(o, (size_t)chunk * c->in_channels * hw), o->alloc((size_t)chunk * sizeof(int))};
}

static void model_ctx_free(ModelCtx *mc) {
    const Ops *o = mc->m->ops;
    o->free(mc->x); o->free(mc->t); o->free(mc->out); o->free(mc->kept); o->free(mc->y);
}

// The sampler's view of the model (host in, host out).
static void model_denoise(void *ctx, float *out, const float *x, const float *t, const int *y, int n) {
    ModelCtx *mc = ctx;
    const Ops *o = mc->m->ops;
    const DitConfig *c = &mc->m->cfg;
    long hw = (long)c->height * c->width, in = c->in_channels * hw, full = dit_out_channels(c) * hw;
    for (int s = 0; s < n; s += mc->chunk) {
        int k = n - s < mc->chunk ? n - s : mc->chunk;
        ops_upload_f32(o, mc->x, x + s * in, (size_t)k * in);
        ops_upload_f32(o, mc->t, t + s, (size_t)k);
        if (y) {
            dit_check_labels(c, y + s, k, "sampling");
            o->upload(mc->y, y + s, (size_t)k * sizeof(int));
        }
        dit_forward(mc->m, mc->out, mc->x, mc->t, y ? mc->y : NULL, k);
        o->copy_rows(mc->kept, in, mc->out, full, k, in, 0);
        ops_download_f32(o, out + s * in, mc->kept, (size_t)k * in);
    }
}

void generate_opts_defaults(GenerateOpts *o) {
    memset(o, 0, sizeof *o);
    o->cfg_scale = 1;
    o->cls = -2;
    o->batch = 100;
    o->last_step = 0.04f;
}

void generate_resolve(GenerateOpts *o, const Dit *m, const TrainConfig *tc, const char *ckpt) {
    const DitConfig *c = &m->cfg;
    if (!strcmp(tc->objective, "ldae") || !strcmp(tc->objective, "denoise"))
        ddm_fatal("%s was trained with the %s objective (a denoising autoencoder for representations, SPEC §1.2): "
                  "it has no sampler; evaluate it with ddm probe", ckpt, tc->objective);
    int ddpm = strcmp(tc->objective, "ddpm") == 0;
    if (!o->sampler[0]) strcpy(o->sampler, ddpm ? "ddpm" : "heun");
    int is_ddpm = !strcmp(o->sampler, "ddpm") || !strcmp(o->sampler, "ddim");
    int is_sit = !strcmp(o->sampler, "heun") || !strcmp(o->sampler, "euler") || !strcmp(o->sampler, "sde");
    if (!is_ddpm && !is_sit) ddm_fatal("--sampler '%s': expected heun, euler, sde, ddpm or ddim", o->sampler);
    if (ddpm != is_ddpm)
        ddm_fatal("--sampler %s does not fit a checkpoint trained with the %s objective (use %s)", o->sampler,
                  tc->objective, ddpm ? "ddpm or ddim" : "heun, euler or sde");
    if (o->cls >= c->num_classes && c->num_classes > 0)
        ddm_fatal("--class %d: the model has classes 0 to %d", o->cls, c->num_classes - 1);
    if (c->num_classes == 0 && o->cfg_scale != 1) ddm_fatal("--cfg needs a class-conditional model");
    if (!o->steps) o->steps = ddpm ? 250 : 50;
}

static void choose_labels(int *y, int n, int num_classes, int cls, Rng *r) {
    for (int i = 0; i < n; i++)
        y[i] = cls >= 0 ? cls : cls == -2 ? i % num_classes : rng_int(r, num_classes);
}

float *generate_samples(Dit *m, const TrainConfig *tc, const GenerateOpts *o, int n, int **labels) {
    const DitConfig *c = &m->cfg;
    long per = (long)c->in_channels * c->height * c->width;
    float *x = xmalloc(n * per * sizeof(float));
    int *y = NULL;
    Rng rng;
    rng_init(&rng, o->seed, 0x5A3F);
    if (c->num_classes > 0) {
        y = xmalloc(n * sizeof(int));
        choose_labels(y, n, c->num_classes, o->cls, &rng);
    }
    rng_normal_fill(&rng, x, n * per);
    int chunk = o->cfg_scale != 1 ? 2 * o->batch : o->batch;
    ModelCtx mc = model_ctx(m, chunk);
    Denoiser d = {model_denoise, &mc, c->in_channels, c->height, c->width, o->cfg_scale, c->num_classes};
    SitPath path = !strcmp(tc->objective, "sit_gvp") ? SIT_GVP : SIT_LINEAR;
    const char *s = o->sampler;
    if (!strcmp(s, "heun")) sit_sample_ode(&d, path, ODE_HEUN, o->steps, x, y, n);
    else if (!strcmp(s, "euler")) sit_sample_ode(&d, path, ODE_EULER, o->steps, x, y, n);
    else if (!strcmp(s, "sde")) sit_sample_sde(&d, path, o->steps, o->last_step, x, y, n, &rng);
    else ddpm_sample(&d, o->steps, !strcmp(s, "ddim"), o->eta, o->clip_x0, x, y, n, &rng);
    model_ctx_free(&mc);
    if (labels) *labels = y;
    else free(y);
    return x;
}
