// SiT samplers: probability-flow ODE (Euler, Heun) and the SBDM reverse SDE (Euler-Maruyama).
// Conventions and formulas: sampler.h. t = 0 noise, t = 1 data.
#include "sample/sampler.h"
#include "common.h"
#include <math.h>
#include <stdlib.h>

static void fill_t(float *tt, int n, double t) { for (int i = 0; i < n; i++) tt[i] = (float)t; }

void sit_sample_ode(const Denoiser *d, SitPath path, OdeMethod m, int steps, float *x, const int *y, int n) {
    (void)path;
    if (steps < 1) ddm_fatal("sampling steps must be >= 1 (got %d)", steps);
    if (m != ODE_EULER && m != ODE_HEUN) DDM_BUG("sit_sample_ode: bad method %d", (int)m);
    size_t len = (size_t)n * d->c * d->h * d->w;
    float *k1 = xmalloc(len * sizeof(float)), *tt = xmalloc((size_t)n * sizeof(float));
    float *k2 = m == ODE_HEUN ? xmalloc(2 * len * sizeof(float)) : NULL, *xp = k2 ? k2 + len : NULL;
    const double dt = 1.0 / steps;
    for (int i = 0; i < steps; i++) {
        double t = (double)i / steps, tn = (double)(i + 1) / steps; // grid exact at both ends
        fill_t(tt, n, t);
        denoiser_eval(d, k1, x, tt, y, n);
        if (m == ODE_EULER) {
            for (size_t j = 0; j < len; j++) x[j] = (float)(x[j] + dt * k1[j]);
        } else {
            for (size_t j = 0; j < len; j++) xp[j] = (float)(x[j] + dt * k1[j]);
            fill_t(tt, n, tn);
            denoiser_eval(d, k2, xp, tt, y, n);
            for (size_t j = 0; j < len; j++) x[j] = (float)(x[j] + 0.5 * dt * ((double)k1[j] + k2[j]));
        }
    }
    free(k1); free(k2); free(tt);
}

// alpha'/alpha and the SBDM diffusion w(t) = (alpha'/alpha) sigma^2 - sigma sigma'.
//  Linear: alpha = t, sigma = 1-t, alpha' = 1, sigma' = -1:
//    alpha'/alpha = 1/t;  w = (1-t)^2/t + (1-t) = (1-t)/t.
//  GVP: alpha = sin(pi t/2), sigma = cos(pi t/2), alpha' = (pi/2) cos, sigma' = -(pi/2) sin:
//    alpha'/alpha = (pi/2) cot(pi t/2);  w = (pi/2) cos^3/sin + (pi/2) sin cos = (pi/2) cot(pi t/2).
// Both are finite for t in (0, 1]; callers keep t >= t0 > 0.
static void sbdm_coeffs(SitPath p, double t, double *ratio, double *w) {
    if (p == SIT_LINEAR) {
        *ratio = 1.0 / t;
        *w = (1.0 - t) / t;
    } else {
        double h = 0.5 * M_PI * t;
        *ratio = 0.5 * M_PI * cos(h) / sin(h);
        *w = *ratio;
    }
}

void sit_sample_sde_ex(const Denoiser *d, SitPath path, int steps, float t0, float last_step, float *x,
                       const int *y, int n, Rng *rng) {
    if (steps < 1) ddm_fatal("sampling steps must be >= 1 (got %d)", steps);
    if (path != SIT_LINEAR && path != SIT_GVP) DDM_BUG("sit_sample_sde: bad path %d", (int)path);
    double t1 = last_step > 0 ? 1.0 - (double)last_step : 1.0 - (double)t0;
    if (!(t0 > 0) || !(t1 > t0)) ddm_fatal("SDE sampling needs 0 < t0 < 1 - last_step (t0 %g, last step %g)",
                                           (double)t0, (double)last_step);
    size_t len = (size_t)n * d->c * d->h * d->w;
    float *v = xmalloc(2 * len * sizeof(float)), *z = v + len, *tt = xmalloc((size_t)n * sizeof(float));
    const double dt = (t1 - t0) / steps;
    double ratio, w;
    for (int i = 0; i < steps; i++) {
        double t = t0 + i * dt;
        fill_t(tt, n, t);
        denoiser_eval(d, v, x, tt, y, n);
        sbdm_coeffs(path, t, &ratio, &w);
        // drift = v + w * score = 2v - (alpha'/alpha) x (see sampler.h); noise sqrt(2 w dt) z.
        double g = sqrt(2.0 * w * dt);
        rng_normal_fill(rng, z, (long)len);
        for (size_t j = 0; j < len; j++)
            x[j] = (float)(x[j] + (2.0 * v[j] - ratio * x[j]) * dt + g * z[j]);
    }
    if (last_step > 0) { // SiT's last_step = "Mean": one drift step of size last_step from t1, no noise
        fill_t(tt, n, t1);
        denoiser_eval(d, v, x, tt, y, n);
        sbdm_coeffs(path, t1, &ratio, &w);
        for (size_t j = 0; j < len; j++)
            x[j] = (float)(x[j] + (2.0 * v[j] - ratio * x[j]) * (double)last_step);
    }
    free(v); free(tt);
}

void sit_sample_sde(const Denoiser *d, SitPath path, int steps, float last_step, float *x, const int *y, int n,
                    Rng *rng) {
    sit_sample_sde_ex(d, path, steps, SIT_SDE_T0, last_step, x, y, n, rng);
}
