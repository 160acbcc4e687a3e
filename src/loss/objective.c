#include "loss/objective.h"
#include <math.h>
#include <string.h>
#include "sample/schedule.h"

static const char *names[] = {"sit_linear", "sit_gvp", "ddpm"};

int objective_parse(const char *name) {
    for (int i = 0; i < 3; i++) if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *objective_name(ObjectiveKind k) { return names[k]; }

void objective_init(Objective *o, ObjectiveKind kind) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    double betas[1000];
    ddpm_linear_schedule(1000, 1e-4, 0.02, betas, o->alphas_cumprod);
}

void objective_sample_t(const Objective *o, Rng *r, float *t, int B) {
    for (int b = 0; b < B; b++) t[b] = o->kind == OBJ_DDPM ? (float)rng_int(r, 1000) : rng_uniform(r);
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
    }
}

void objective_make_pair(const Objective *o, float *xt, float *target, const float *x, const float *noise,
                         const float *t, int B, long n) {
    for (int b = 0; b < B; b++) {
        double a = 0, s = 0, ta = 0, ts = 0;
        coefficients(o, t[b], &a, &s, &ta, &ts);
        for (long i = b * n; i < (b + 1) * n; i++) {
            xt[i] = (float)(a * x[i] + s * noise[i]);
            target[i] = (float)(ta * x[i] + ts * noise[i]);
        }
    }
}

float objective_loss(const float *out, const float *target, int B, int C, int Cout, long HW, float *d_out) {
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
