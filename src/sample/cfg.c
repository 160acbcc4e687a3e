// Classifier-free guidance around the model callback.
#include "sample/sampler.h"
#include "common.h"
#include <stdlib.h>
#include <string.h>

void denoiser_eval(const Denoiser *d, float *out, const float *x, const float *t, const int *y, int n) {
    if (d->cfg_scale == 1.0f || y == NULL) { // no guidance (unconditional models have nothing to guide)
        d->fn(d->ctx, out, x, t, y, n);
        return;
    }
    // One batch of 2n: [x; x] at [t; t] with labels [y; null]. Scratch: inputs and outputs of 2n.
    size_t per = (size_t)d->c * d->h * d->w, m = (size_t)n * per;
    float *xx = xmalloc(4 * m * sizeof(float)), *oo = xx + 2 * m;
    float *tt = xmalloc(2 * (size_t)n * sizeof(float));
    int *yy = xmalloc(2 * (size_t)n * sizeof(int));
    memcpy(xx, x, m * sizeof(float));
    memcpy(xx + m, x, m * sizeof(float));
    memcpy(tt, t, (size_t)n * sizeof(float));
    memcpy(tt + n, t, (size_t)n * sizeof(float));
    memcpy(yy, y, (size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) yy[n + i] = d->null_class;
    d->fn(d->ctx, oo, xx, tt, yy, 2 * n);
    // Guidance on all channels (DiT/SiT apply it to the first 3 only; see sampler.h).
    const float s = d->cfg_scale, *cond = oo, *uncond = oo + m;
    for (size_t i = 0; i < m; i++) out[i] = uncond[i] + s * (cond[i] - uncond[i]);
    free(xx); free(tt); free(yy);
}
