#include "schedule/schedule.h"
#include "common.h"

void ddpm_linear_schedule(int T, double beta_start, double beta_end, double *betas, double *alphas_cumprod) {
    if (T < 1) DDM_BUG("ddpm_linear_schedule: T = %d", T);
    double step = T > 1 ? (beta_end - beta_start) / (double)(T - 1) : 0.0;
    double ab = 1.0;
    for (int i = 0; i < T; i++) {
        // Same arithmetic as numpy's linspace: arange * step + start, last element pinned to stop.
        double b = (T > 1 && i == T - 1) ? beta_end : (double)i * step + beta_start;
        ab *= 1.0 - b;
        if (betas) betas[i] = b;
        if (alphas_cumprod) alphas_cumprod[i] = ab;
    }
}
