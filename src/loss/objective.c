#include "loss/objective.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "sample/schedule.h"

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

void objective_set_pca(Objective *o, const Pca *p, int C, int H, int W, const char *what) {
    pca_check_images(p, C, H, W, what);
    o->pca = p;
    o->C = C; o->H = H; o->W = W;
}

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
    long Td = (long)(o->H / p->patch) * (o->W / p->patch) * p->d;
    float *z = xmalloc((size_t)B * Td * sizeof(float));
    pca_encode(p, x, B, o->H, o->W, z);
    if (o->dn.target == TARGET_LATENT) pca_decode(p, z, B, o->H, o->W, target);
    for (int b = 0; b < B; b++) {
        double g, s;
        denoise_gamma_sigma(o, t[b], &g, &s);
        float *zb = z + (size_t)b * Td;
        const float *eb = noise + (size_t)b * n;
        for (long k = 0; k < Td; k++) zb[k] = (float)(g * zb[k] + s * eb[k]);
    }
    pca_decode(p, z, B, o->H, o->W, xt);
    if (o->dn.target == TARGET_IMAGE) {
        memcpy(target, x, (size_t)B * n * sizeof(float));
    } else if (o->dn.target == TARGET_NOISE) {   // pca_decode(eps) - pca_decode(0)
        float *zero = xcalloc((size_t)Td, sizeof(float)), *mean = xmalloc((size_t)n * sizeof(float));
        pca_decode(p, zero, 1, o->H, o->W, mean);
        for (int b = 0; b < B; b++) memcpy(z + (size_t)b * Td, noise + (size_t)b * n, (size_t)Td * sizeof(float));
        pca_decode(p, z, B, o->H, o->W, target);
        for (int b = 0; b < B; b++)
            for (long i = 0; i < n; i++) target[(size_t)b * n + i] -= mean[i];
        free(zero);
        free(mean);
    }
    free(z);
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

void objective_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                         const float *t, int B, long n) {
    if (objective_uses_pca(o)) {
        pca_make_pair(o, xt, target, x, noise, t, B, n);
        return;
    }
    for (int b = 0; b < B; b++) {
        double a = 0, s = 0, ta = 0, ts = 0;
        coefficients(o, t[b], &a, &s, &ta, &ts);
        for (long i = b * n; i < (b + 1) * n; i++) {
            xt[i] = (float)(a * x[i] + s * noise[i]);
            target[i] = (float)(ta * x[i] + ts * noise[i]);
        }
    }
}

// A loss in the full PCA basis: r = V_full (target - xhat) per PCA patch,
// L = mean_b lambda_b sum_patches sum_i w_i r_i^2 / norm, norm = T*D (l-DAE) or T*d (latent output);
// lambda_b = 1 / (1 + sigma_t^2) with use_lambda, else 1. See objective.h.
static float basis_loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C,
                        int Cout, long HW, float *d_out, const double *w, int use_lambda, double norm) {
    const Pca *p = o->pca;
    pca_check(o, (long)C * HW);
    if (C != o->C) DDM_BUG("%s loss: %d channels, set up for %d", names[o->kind], C, o->C);
    const int D = p->D;
    const long n = (long)C * HW, T = n / D;
    float *e = xmalloc((size_t)B * n * sizeof(float)), *r = xmalloc((size_t)B * n * sizeof(float));
    for (int b = 0; b < B; b++)
        for (long i = 0; i < n; i++) e[(size_t)b * n + i] = target[(size_t)b * n + i] - out[(size_t)b * Cout * HW + i];
    pca_project_full_nomean(p, e, B, o->H, o->W, r);
    double total = 0;
    for (int b = 0; b < B; b++) {
        double lam = 1;
        if (use_lambda) {
            double g_, sig;
            denoise_gamma_sigma(o, t[b], &g_, &sig);
            lam = 1.0 / (1.0 + sig * sig);
        }
        double g = -2.0 * lam / ((double)B * norm), s = 0;
        float *rb = r + (size_t)b * n;
        for (long k = 0; k < T; k++)
            for (int i = 0; i < D; i++) {
                double v = rb[k * D + i];
                s += w[i] * v * v;
                rb[k * D + i] = (float)(g * w[i] * v);   // dL/dr_i, then mapped back by V_full^T
            }
        total += lam * s / norm;
    }
    if (d_out) {
        pca_unproject_full_nomean(p, r, B, o->H, o->W, e);
        for (int b = 0; b < B; b++) {
            float *db = d_out + (size_t)b * Cout * HW;
            memcpy(db, e + (size_t)b * n, (size_t)n * sizeof(float));
            memset(db + n, 0, (size_t)(Cout - C) * HW * sizeof(float));
        }
    }
    free(e);
    free(r);
    return (float)(total / B);
}

float objective_loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C,
                     int Cout, long HW, float *d_out) {
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
    double total = 0;
    long n = (long)C * HW;
    double g = 2.0 / ((double)n * B);
    for (int b = 0; b < B; b++) {
        const float *o = out + (long)b * Cout * HW, *tg = target + (long)b * n;
        float *d = d_out ? d_out + (long)b * Cout * HW : NULL;
        double s = 0;
        for (long i = 0; i < n; i++) {
            double e = (double)o[i] - tg[i];
            s += e * e;
            if (d) d[i] = (float)(g * e);
        }
        if (d) memset(d + n, 0, (size_t)(Cout - C) * HW * sizeof(float));
        total += s / n;
    }
    return (float)(total / B);
}
