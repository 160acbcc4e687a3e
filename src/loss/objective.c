#include "loss/objective.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "schedule/schedule.h"

static const char *names[] = {"sit_linear", "sit_gvp", "ddpm", "ldae", "denoise"};
#define N_OBJECTIVES 5

int objective_parse(const char *name) {
    for (int i = 0; i < N_OBJECTIVES; i++) if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *objective_name(ObjectiveKind k) { return names[k]; }

// The settings of denoise, by field (noise, tokenizer, target, pca_output, loss_weight).
static const char *setting_flags[5] = {"--noise", "--tokenizer", "--target", "--pca-output", "--loss-weight"};
static const char *setting_names[5][4] = {
    {"ddpm_linear", "gamma2_linear", "sigma_linear", NULL},
    {"pixel", "pca", NULL},
    {"noise", "latent", "image", NULL},
    {"image", "latent", NULL},
    {"mse", "ldae", NULL},
};

const char *denoise_setting_name(int field, int value) { return setting_names[field][value]; }

static const DenoiseSpec ldae_spec = {NOISE_SIGMA_LINEAR, TOK_PCA, TARGET_IMAGE, OUTPUT_IMAGE, WEIGHT_LDAE};
static const DenoiseSpec denoise_default = {NOISE_DDPM_LINEAR, TOK_PIXEL, TARGET_NOISE, OUTPUT_IMAGE, WEIGHT_MSE};

void objective_init(Objective *o, ObjectiveKind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->single_t = -1;
    o->dn = kind == OBJ_LDAE ? ldae_spec : denoise_default;
    double betas[1000];
    ddpm_linear_schedule(1000, 1e-4, 0.02, betas, o->alphas_cumprod);
}

const char *objective_set_denoise(Objective *o, const char *noise, const char *tokenizer, const char *target,
                                  const char *output, const char *weight) {
    static char msg[256];
    if (o->kind != OBJ_DENOISE) DDM_BUG("objective_set_denoise on %s", names[o->kind]);
    const char *given[5] = {noise, tokenizer, target, output, weight};
    int *field[5] = {&o->dn.noise, &o->dn.tokenizer, &o->dn.target, &o->dn.output, &o->dn.weight};
    for (int f = 0; f < 5; f++) {
        if (!given[f] || !given[f][0]) continue;
        int v = -1;
        for (int k = 0; setting_names[f][k]; k++) if (!strcmp(given[f], setting_names[f][k])) v = k;
        if (v < 0) {
            int len = snprintf(msg, sizeof msg, "%s '%s': expected", setting_flags[f], given[f]);
            for (int k = 0; setting_names[f][k] && len < (int)sizeof msg; k++)
                len += snprintf(msg + len, sizeof msg - len, "%s %s", k ? (setting_names[f][k + 1] ? "," : " or") : "",
                                setting_names[f][k]);
            return msg;
        }
        *field[f] = v;
    }
    const DenoiseSpec *s = &o->dn;
    if (s->tokenizer == TOK_PIXEL) {
        if (s->target == TARGET_LATENT)
            return "--target latent needs --tokenizer pca (with the pixel tokenizer the clean latent is the image: --target image)";
        if (s->output == OUTPUT_LATENT) return "--pca-output latent needs --tokenizer pca";
        if (s->weight == WEIGHT_LDAE) return "--loss-weight ldae needs --tokenizer pca (its weights live in the PCA basis)";
    } else if (s->output == OUTPUT_LATENT) {
        if (s->target == TARGET_IMAGE)
            return "--target image is the original image in pixels: it needs --pca-output image";
        if (s->weight == WEIGHT_LDAE) return "--loss-weight ldae weights the full PCA basis: it needs --pca-output image";
    }
    return NULL;
}

int objective_uses_pca(const Objective *o) {
    return o->kind == OBJ_LDAE || (o->kind == OBJ_DENOISE && o->dn.tokenizer == TOK_PCA);
}

const char *objective_t_error(ObjectiveKind kind, float t) {
    if (kind == OBJ_DDPM) {
        if (!(t >= 0 && t <= 999) || t != floorf(t)) return "a DDPM model takes an integer t from 0 (data) to 999 (noise)";
    } else if (kind == OBJ_DENOISE) {
        if (!(t >= 0 && t <= 999) || t != floorf(t))
            return "a denoise model takes an integer noise level t from 0 (clean) to 999 (most noise)";
    } else if (kind == OBJ_LDAE) {
        if (!(t >= 0 && t <= 999)) return "an l-DAE model takes a noise level t from 0 (clean) to 999 (sigma = sqrt 2)";
    } else if (!(t >= 0 && t <= 1)) {
        return "a SiT model takes t from 0 (noise) to 1 (data)";
    }
    return NULL;
}

struct ObjectiveDev {
    const Ops *ops;
    int cap;                       // batch capacity
    double *coef, *loss, *g, *w;   // device: [cap, 4] coefficients, [cap] per-sample losses and factors, [D] weights
    double *h;                     // host staging, [max(4 cap, D)]
    float *buf[3];                 // device scratch, grown on demand
    size_t buf_n[3];
    PcaDev *pd;                    // the tokenizer on the device, or NULL
};

void objective_set_pca(Objective *o, const Pca *p, int C, int H, int W, const char *what) {
    pca_check_images(p, C, H, W, what);
    o->pca = p;
    o->C = C; o->H = H; o->W = W;
    struct ObjectiveDev *d = o->dev;
    if (d) {   // bound before the tokenizer was known: its device copy and the basis weights now
        pca_dev_free(d->pd);
        d->pd = pca_dev_create(d->ops, p);
        d->ops->free(d->w);
        d->w = d->ops->alloc((size_t)p->D * sizeof(double));
        if (p->D > 4 * d->cap) d->h = xrealloc(d->h, (size_t)p->D * sizeof(double));
    }
}

void objective_bind(Objective *o, const Ops *ops, int max_batch) {
    if (o->dev) DDM_BUG("objective bound twice");
    struct ObjectiveDev *d = xcalloc(1, sizeof *d);
    d->ops = ops;
    d->cap = max_batch;
    d->coef = ops->alloc((size_t)4 * max_batch * sizeof(double));
    d->loss = ops->alloc((size_t)max_batch * sizeof(double));
    d->g = ops->alloc((size_t)max_batch * sizeof(double));
    int D = o->pca ? o->pca->D : 0;
    d->w = D ? ops->alloc((size_t)D * sizeof(double)) : NULL;
    d->h = xmalloc((size_t)(4 * max_batch > D ? 4 * max_batch : D) * sizeof(double));
    if (o->pca) d->pd = pca_dev_create(ops, o->pca);
    o->dev = d;
}

void objective_unbind(Objective *o) {
    struct ObjectiveDev *d = o->dev;
    if (!d) return;
    const Ops *ops = d->ops;
    ops->free(d->coef); ops->free(d->loss); ops->free(d->g); ops->free(d->w);
    for (int i = 0; i < 3; i++) ops->free(d->buf[i]);
    pca_dev_free(d->pd);
    free(d->h);
    free(d);
    o->dev = NULL;
}

// Device scratch buffer i of at least n floats.
static float *scratch(const Objective *o, int i, size_t n) {
    struct ObjectiveDev *d = o->dev;
    if (d->buf_n[i] < n) {
        d->ops->free(d->buf[i]);
        d->buf[i] = ops_alloc_f32(d->ops, n);
        d->buf_n[i] = n;
    }
    return d->buf[i];
}

static struct ObjectiveDev *bound(const Objective *o, int B) {
    if (!o->dev) DDM_BUG("%s objective used before objective_bind", names[o->kind]);
    if (B > o->dev->cap) DDM_BUG("%s objective bound for batches of %d, got %d", names[o->kind], o->dev->cap, B);
    return o->dev;
}

// The per-sample coefficients [B, 4] of the host staging buffer, uploaded.
static void upload_coef(struct ObjectiveDev *d, int B) { d->ops->upload(d->coef, d->h, (size_t)4 * B * sizeof(double)); }

double ldae_sigma(float t) { return LDAE_SIGMA_MAX * (double)t / (LDAE_LEVELS - 1); }

double ldae_lambda(float t) {
    double s = ldae_sigma(t);
    return 1.0 / (1.0 + s * s);
}

void denoise_gamma_sigma(const Objective *o, float t, double *gamma, double *sigma) {
    switch (o->dn.noise) {
    case NOISE_DDPM_LINEAR: {
        double ab = o->alphas_cumprod[(int)t];
        *gamma = sqrt(ab); *sigma = sqrt(1 - ab);
        break;
    }
    case NOISE_GAMMA2_LINEAR: {
        double u = (double)t / (LDAE_LEVELS - 1);
        *gamma = sqrt(1 - u); *sigma = sqrt(u);
        break;
    }
    default: *gamma = 1; *sigma = ldae_sigma(t); break;
    }
}

void objective_sample_t(const Objective *o, Rng *r, float *t, int B) {
    if (o->single_t >= 0) {
        for (int b = 0; b < B; b++) t[b] = o->single_t;
        return;
    }
    for (int b = 0; b < B; b++)
        t[b] = o->kind == OBJ_DDPM ? (float)rng_int(r, 1000)
             : o->kind == OBJ_LDAE || o->kind == OBJ_DENOISE ? (float)rng_int(r, LDAE_LEVELS)
                                                             : rng_uniform(r);
}

static void pca_check(const Objective *o, long n) {
    if (!o->pca) DDM_BUG("%s objective without a PCA tokenizer (objective_set_pca)", names[o->kind]);
    if (n != (long)o->C * o->H * o->W) DDM_BUG("%s objective set up for %dx%dx%d images, got %ld values", names[o->kind], o->C, o->H, o->W, n);
}

// z = gamma_t pca_encode(x) + sigma_t eps (eps: the first T*d noise values of each sample), x_t = pca_decode(z);
// the target image by dn.target (see objective.h).
static void pca_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                          const float *t, int B, long n) {
    const Pca *p = o->pca;
    pca_check(o, n);
    struct ObjectiveDev *d = bound(o, B);
    const Ops *ops = d->ops;
    long Td = (long)(o->H / p->patch) * (o->W / p->patch) * p->d;
    float *z = scratch(o, 0, (size_t)B * Td);
    pca_dev_encode(d->pd, x, B, o->H, o->W, z);
    if (o->dn.target == TARGET_LATENT) pca_dev_decode(d->pd, z, B, o->H, o->W, target);
    for (int b = 0; b < B; b++) {
        double *c = d->h + 4 * b;
        denoise_gamma_sigma(o, t[b], &c[0], &c[1]);
        c[2] = c[3] = 0;
    }
    upload_coef(d, B);
    ops->affine_rows(z, NULL, z, noise, d->coef, B, Td, Td, n);
    pca_dev_decode(d->pd, z, B, o->H, o->W, xt);
    if (o->dn.target == TARGET_IMAGE) {
        ops->copy(target, x, (size_t)B * n);
    } else if (o->dn.target == TARGET_NOISE) {   // pca_decode(eps) - pca_decode(0)
        float *zero = scratch(o, 1, (size_t)Td), *neg_mean = scratch(o, 2, (size_t)n);
        ops->zero(zero, (size_t)Td);
        pca_dev_decode(d->pd, zero, 1, o->H, o->W, neg_mean);
        ops->scale(neg_mean, -1.0f, (size_t)n);   // x + (-m) is exactly x - m
        ops->copy_rows(z, Td, noise, n, B, Td, 0);
        pca_dev_decode(d->pd, z, B, o->H, o->W, target);
        ops->add_broadcast(target, neg_mean, B, n);
    }
}

// Coefficients of x_t = a x + s eps and target = ta x + ts eps.
static void coefficients(const Objective *o, float t, double *a, double *s, double *ta, double *ts) {
    switch (o->kind) {
    case OBJ_SIT_LINEAR: *a = t; *s = 1 - t; *ta = 1; *ts = -1; break;
    case OBJ_SIT_GVP: {
        double h = M_PI / 2 * t;
        *a = sin(h); *s = cos(h); *ta = M_PI / 2 * cos(h); *ts = -M_PI / 2 * sin(h);
        break;
    }
    case OBJ_DDPM: {
        double ab = o->alphas_cumprod[(int)t];
        *a = sqrt(ab); *s = sqrt(1 - ab); *ta = 0; *ts = 1;
        break;
    }
    case OBJ_DENOISE:   // the pixel tokenizer (a latent target is refused by objective_set_denoise)
        denoise_gamma_sigma(o, t, a, s);
        if (o->dn.target == TARGET_NOISE) { *ta = 0; *ts = 1; } else { *ta = 1; *ts = 0; }
        break;
    case OBJ_LDAE: DDM_BUG("ldae has no pixel-space coefficients");
    }
}

static void make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                      const float *t, int B, long n) {
    if (objective_uses_pca(o)) {
        pca_make_pair(o, xt, target, x, noise, t, B, n);
        return;
    }
    struct ObjectiveDev *d = bound(o, B);
    for (int b = 0; b < B; b++) {
        double *c = d->h + 4 * b;
        c[0] = c[1] = c[2] = c[3] = 0;
        coefficients(o, t[b], &c[0], &c[1], &c[2], &c[3]);
    }
    upload_coef(d, B);
    d->ops->affine_rows(xt, target, x, noise, d->coef, B, n, n, n);
}

// A loss in the full PCA basis: r = V_full (target - xhat) per PCA patch,
// L = mean_b lambda_b sum_patches sum_i w_i r_i^2 / norm, norm = T*D (l-DAE) or T*d (latent output);
// lambda_b = 1 / (1 + sigma_t^2) with use_lambda, else 1. See objective.h.
static float basis_loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C,
                        int Cout, long HW, float *d_out, const double *w, int use_lambda, double norm) {
    const Pca *p = o->pca;
    pca_check(o, (long)C * HW);
    if (C != o->C) DDM_BUG("%s loss: %d channels, set up for %d", names[o->kind], C, o->C);
    struct ObjectiveDev *d = bound(o, B);
    const Ops *ops = d->ops;
    const int D = p->D;
    const long n = (long)C * HW, T = n / D;
    float *e = scratch(o, 0, (size_t)B * n), *r = scratch(o, 1, (size_t)B * n);
    ops->upload(d->w, w, (size_t)D * sizeof(double));
    double *lam = xmalloc((size_t)B * sizeof(double));
    for (int b = 0; b < B; b++) {
        lam[b] = 1;
        if (use_lambda) {
            double g_, sig;
            denoise_gamma_sigma(o, t[b], &g_, &sig);
            lam[b] = 1.0 / (1.0 + sig * sig);
        }
        d->h[b] = -2.0 * lam[b] / ((double)B * norm);   // dL/dr_i = g w_i r_i, then mapped back by V_full^T
    }
    ops->upload(d->g, d->h, (size_t)B * sizeof(double));
    ops->sub_rows(e, target, out, B, n, n, (long)Cout * HW);
    pca_dev_project_full_nomean(d->pd, e, B, o->H, o->W, r);
    ops->weighted_sq_rows(d->loss, r, d->w, d_out ? d->g : NULL, B, T, D);
    ops->download(d->h, d->loss, (size_t)B * sizeof(double));
    double total = 0;
    for (int b = 0; b < B; b++) total += lam[b] * d->h[b] / norm;
    if (d_out) {
        pca_dev_unproject_full_nomean(d->pd, r, B, o->H, o->W, e);
        ops->copy_rows(d_out, (long)Cout * HW, e, n, B, n, 1);
    }
    free(lam);
    return (float)(total / B);
}

static float loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C, int Cout,
                  long HW, float *d_out) {
    if (objective_uses_pca(o) && (o->dn.weight == WEIGHT_LDAE || o->dn.output == OUTPUT_LATENT)) {
        const Pca *p = o->pca;
        if (!p) DDM_BUG("%s objective without a PCA tokenizer (objective_set_pca)", names[o->kind]);
        double *w = xmalloc((size_t)p->D * sizeof(double));
        long T = (long)C * HW / p->D;
        float L;
        if (o->dn.output == OUTPUT_LATENT) {   // the first d latent coordinates, whitened if the tokenizer is
            for (int i = 0; i < p->D; i++) {
                double sc = p->whitened && i < p->d ? pca_whiten_scale(p, i) : 1;
                w[i] = i < p->d ? 1.0 / (sc * sc) : 0.0;
            }
            L = basis_loss(o, out, target, t, B, C, Cout, HW, d_out, w, 0, (double)T * p->d);
        } else {
            for (int i = 0; i < p->D; i++) w[i] = i < p->d ? 1.0 : LDAE_TAIL_WEIGHT;
            L = basis_loss(o, out, target, t, B, C, Cout, HW, d_out, w, 1, (double)T * p->D);
        }
        free(w);
        return L;
    }
    struct ObjectiveDev *d = bound(o, B);
    long n = (long)C * HW;
    d->ops->sq_err_rows(d->loss, d_out, out, target, 2.0 / ((double)n * B), B, n, (long)Cout * HW);
    d->ops->download(d->h, d->loss, (size_t)B * sizeof(double));
    double total = 0;
    for (int b = 0; b < B; b++) total += d->h[b] / n;
    return (float)(total / B);
}

// An objective that was not bound works on host memory: it is bound to the CPU table for the call.
#define ON_HOST_IF_UNBOUND(o, B, call)           \
    do {                                         \
        Objective host_ = *(o);                  \
        host_.dev = NULL;                        \
        objective_bind(&host_, &ops_cpu, (B));   \
        call;                                    \
        objective_unbind(&host_);                \
    } while (0)

void objective_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                         const float *t, int B, long n) {
    if (o->dev) make_pair(o, xt, target, x, noise, t, B, n);
    else ON_HOST_IF_UNBOUND(o, B, make_pair(&host_, xt, target, x, noise, t, B, n));
}

float objective_loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C,
                     int Cout, long HW, float *d_out) {
    float L = 0;
    if (o->dev) L = loss(o, out, target, t, B, C, Cout, HW, d_out);
    else ON_HOST_IF_UNBOUND(o, B, L = loss(&host_, out, target, t, B, C, Cout, HW, d_out));
    return L;
}
