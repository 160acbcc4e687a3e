// DDPM ancestral and DDIM sampling over respaced timesteps (DiT / improved-diffusion semantics).
#include "sample/sampler.h"
#include "schedule/schedule.h"
#include "common.h"
#include <math.h>
#include <stdlib.h>

#define DDPM_T 1000

void ddpm_respace(int steps, int *ts) {
    if (steps < 1 || steps > DDPM_T) ddm_fatal("DDPM sampling steps must be in 1..%d (got %d)", DDPM_T, steps);
    if (steps == 1) { ts[0] = DDPM_T - 1; return; } // DiT would keep t = 0 only; 999 is the useful choice
    // DiT's space_timesteps: cur_idx += frac_stride, Python round() = round half to even (rint).
    double frac = (double)(DDPM_T - 1) / (double)(steps - 1), cur = 0.0;
    for (int i = 0; i < steps; i++) { ts[i] = (int)rint(cur); cur += frac; }
}

void ddpm_sample(const Denoiser *d, int steps, int ddim, float eta, int clip_x0, float *x, const int *y, int n,
                 Rng *rng) {
    int *ts = xmalloc((size_t)(steps > 0 ? steps : 1) * sizeof(int));
    ddpm_respace(steps, ts);
    if (ddim && !(eta >= 0)) ddm_fatal("DDIM eta must be >= 0 (got %g)", (double)eta);
    int need_rng = steps > 1 && (!ddim || eta > 0);
    if (need_rng && !rng) DDM_BUG("ddpm_sample: this sampler draws noise but rng is NULL");

    // Respaced process: betas from the kept alphas_cumprod, then recomputed like GaussianDiffusion.
    double full_ab[DDPM_T];
    ddpm_linear_schedule(DDPM_T, 1e-4, 0.02, NULL, full_ab);
    double *beta = xmalloc(4 * (size_t)steps * sizeof(double)), *ab = beta + steps, *ab_prev = ab + steps,
           *logvar = ab_prev + steps;
    double last = 1.0, cum = 1.0;
    for (int i = 0; i < steps; i++) {
        beta[i] = 1.0 - full_ab[ts[i]] / last;
        last = full_ab[ts[i]];
        ab_prev[i] = cum;
        cum *= 1.0 - beta[i];
        ab[i] = cum;
    }
    // Fixed-small variance beta_tilde = beta (1 - ab_prev)/(1 - ab); it is 0 at i = 0, so the log is
    // clipped by using entry 1 there (improved-diffusion's posterior_log_variance_clipped).
    for (int i = 0; i < steps; i++) {
        int k = (i == 0 && steps > 1) ? 1 : i;
        double pv = beta[k] * (1.0 - ab_prev[k]) / (1.0 - ab[k]);
        logvar[i] = pv > 0 ? log(pv) : -INFINITY;
    }

    size_t len = (size_t)n * d->c * d->h * d->w;
    float *eps = xmalloc(2 * len * sizeof(float)), *z = eps + len, *tt = xmalloc((size_t)n * sizeof(float));
    for (int i = steps - 1; i >= 0; i--) {
        for (int j = 0; j < n; j++) tt[j] = (float)ts[i]; // the ORIGINAL timestep
        denoiser_eval(d, eps, x, tt, y, n);
        const double a = ab[i], ap = ab_prev[i];
        const double rab = sqrt(1.0 / a), rabm1 = sqrt(1.0 / a - 1.0);
        int noise = i > 0 && (!ddim || eta > 0);
        if (noise) rng_normal_fill(rng, z, (long)len);
        if (ddim) {
            double sigma = eta * sqrt((1.0 - ap) / (1.0 - a)) * sqrt(1.0 - a / ap);
            double ce = 1.0 - ap - sigma * sigma, cx0 = sqrt(ap);
            ce = ce > 0 ? sqrt(ce) : 0.0;
            for (size_t j = 0; j < len; j++) {
                double x0 = rab * x[j] - rabm1 * eps[j];
                if (clip_x0) x0 = x0 < -1 ? -1 : x0 > 1 ? 1 : x0;
                double e = (rab * x[j] - x0) / rabm1; // eps consistent with the (clipped) x0
                double xn = cx0 * x0 + ce * e;
                if (noise) xn += sigma * z[j];
                x[j] = (float)xn;
            }
        } else {
            double c1 = beta[i] * sqrt(ap) / (1.0 - a), c2 = (1.0 - ap) * sqrt(1.0 - beta[i]) / (1.0 - a);
            double sd = exp(0.5 * logvar[i]);
            for (size_t j = 0; j < len; j++) {
                double x0 = rab * x[j] - rabm1 * eps[j];
                if (clip_x0) x0 = x0 < -1 ? -1 : x0 > 1 ? 1 : x0;
                double xn = c1 * x0 + c2 * x[j];
                if (noise) xn += sd * z[j];
                x[j] = (float)xn;
            }
        }
    }
    free(ts); free(beta); free(eps); free(tt);
}
