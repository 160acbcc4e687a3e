#include "loss/objective.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "sample/schedule.h"

static const char *names[] = {"sit_linear", "sit_gvp", "ddpm", "ldae"};

int objective_parse(const char *name) {
    for (int i = 0; i < 4; i++) if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *objective_name(ObjectiveKind k) { return names[k]; }

void objective_init(Objective *o, ObjectiveKind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    double betas[1000];
    ddpm_linear_schedule(1000, 1e-4, 0.02, betas, o->alphas_cumprod);
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

void objective_sample_t(const Objective *o, Rng *r, float *t, int B) {
    for (int b = 0; b < B; b++)
        t[b] = o->kind == OBJ_DDPM ? (float)rng_int(r, 1000) : o->kind == OBJ_LDAE ? (float)rng_int(r, LDAE_LEVELS)
                                                                                 : rng_uniform(r);
}

static void ldae_check(const Objective *o, long n) {
    if (!o->pca) DDM_BUG("ldae objective without a PCA tokenizer (objective_set_pca)");
    if (n != (long)o->C * o->H * o->W) DDM_BUG("ldae objective set up for %dx%dx%d images, got %ld values", o->C, o->H, o->W, n);
}

// z = pca_encode(x) + sigma_t eps (eps: the first T*d noise values of each sample), x_t = pca_decode(z).
static void ldae_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                           const float *t, int B, long n) {
    const Pca *p = o->pca;
    ldae_check(o, n);
    long Td = (long)(o->H / p->patch) * (o->W / p->patch) * p->d;
    float *z = xmalloc((size_t)B * Td * sizeof(float));
    pca_encode(p, x, B, o->H, o->W, z);
    for (int b = 0; b < B; b++) {
        double s = ldae_sigma(t[b]);
        float *zb = z + (size_t)b * Td;
        const float *eb = noise + (size_t)b * n;
        for (long k = 0; k < Td; k++) zb[k] = (float)(zb[k] + s * eb[k]);
    }
    pca_decode(p, z, B, o->H, o->W, xt);
    memcpy(target, x, (size_t)B * n * sizeof(float));
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
    case OBJ_LDAE: DDM_BUG("ldae has no pixel-space coefficients");
    }
}

void objective_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                         const float *t, int B, long n) {
    if (o->kind == OBJ_LDAE) {
        ldae_make_pair(o, xt, target, x, noise, t, B, n);
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

// r = V_full (x - xhat) per PCA patch; L = mean_b lambda_b sum w_i r_i^2 / (T D); see objective.h.
static float ldae_loss(const Objective *o, const float *out, const float *target, const float *t, int B, int C,
                       int Cout, long HW, float *d_out) {
    const Pca *p = o->pca;
    ldae_check(o, (long)C * HW);
    if (C != o->C) DDM_BUG("ldae loss: %d channels, set up for %d", C, o->C);
    const int D = p->D, d = p->d;
    const long n = (long)C * HW, T = n / D;
    float *e = xmalloc((size_t)B * n * sizeof(float)), *r = xmalloc((size_t)B * n * sizeof(float));
    for (int b = 0; b < B; b++)
        for (long i = 0; i < n; i++) e[(size_t)b * n + i] = target[(size_t)b * n + i] - out[(size_t)b * Cout * HW + i];
    pca_project_full_nomean(p, e, B, o->H, o->W, r);
    double total = 0;
    for (int b = 0; b < B; b++) {
        double lam = ldae_lambda(t[b]), g = -2.0 * lam / ((double)B * T * D), s = 0;
        float *rb = r + (size_t)b * n;
        for (long k = 0; k < T; k++)
            for (int i = 0; i < D; i++) {
                double w = i < d ? 1.0 : LDAE_TAIL_WEIGHT, v = rb[k * D + i];
                s += w * v * v;
                rb[k * D + i] = (float)(g * w * v);   // dL/dr_i, then mapped back by V_full^T
            }
        total += lam * s / ((double)T * D);
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
    if (o->kind == OBJ_LDAE) return ldae_loss(o, out, target, t, B, C, Cout, HW, d_out);
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
