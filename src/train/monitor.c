#include "train/monitor.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "eval/feature_sets.h"
#include "loss/dispersive.h"
#include "rng.h"

// Fixed seeds of the erank batch: the same images, t and noise for every run.
enum { ERANK_IMAGE_SEED = 0xE2A4, ERANK_NOISE_SEED = 0xE2A5 };

Monitor *monitor_create(const Dit *m, const int *blocks, int n_blocks, int variant, float lambda, int n_active,
                        float tau, float eps, int erank_every, int erank_n, DataSource *data, const Objective *obj,
                        int batch) {
    const Ops *ops = m->ops;
    Monitor *mon = xcalloc(1, sizeof *mon);
    mon->ops = ops;
    mon->n_blocks = n_blocks < MONITOR_MAX_BLOCKS ? n_blocks : MONITOR_MAX_BLOCKS;
    memcpy(mon->blocks, blocks, (size_t)mon->n_blocks * sizeof(int));
    mon->variant = variant < 0 ? DISP_INFONCE_L2 : variant;
    mon->lambda_k = n_active > 0 ? lambda / n_active : lambda;
    mon->tau = tau;
    mon->eps = eps;
    mon->block_grad_sumsq = xcalloc((size_t)m->cfg.depth, sizeof(double));
    size_t BD = (size_t)batch * dit_num_tokens(&m->cfg) * m->cfg.hidden;
    disp_work_init(&mon->work, ops, batch);
    mon->g = ops_alloc_f32(ops, BD);
    mon->h_g = xmalloc(BD * sizeof(float));
    mon->erank_every = erank_every;
    if (erank_every > 0) {
        int n = erank_n < data->n ? erank_n : data->n;
        long per = (long)data->c * data->h * data->w;
        mon->erank_n = n;
        float *x = data_draw(data, n, ERANK_IMAGE_SEED), *noise = xmalloc((size_t)n * per * sizeof(float));
        float *t = xmalloc((size_t)n * sizeof(float));
        Rng r;
        rng_init(&r, ERANK_NOISE_SEED, 0);
        Objective o = *obj;
        o.single_t = -1;
        objective_sample_t(&o, &r, t, n);
        rng_normal_fill(&r, noise, (long)n * per);
        // x_t on the device, in chunks the objective was bound for
        float *dx = ops_alloc_f32(ops, (size_t)n * per), *dnoise = ops_alloc_f32(ops, (size_t)n * per);
        float *dtarget = ops_alloc_f32(ops, (size_t)batch * per);
        ops_upload_f32(ops, dx, x, (size_t)n * per);
        ops_upload_f32(ops, dnoise, noise, (size_t)n * per);
        mon->fxt = ops_alloc_f32(ops, (size_t)n * per);
        mon->ft = ops_alloc_f32(ops, (size_t)n);
        ops_upload_f32(ops, mon->ft, t, (size_t)n);
        for (int s = 0; s < n; s += batch) {
            int k = n - s < batch ? n - s : batch;
            objective_make_pair(&o, mon->fxt + (size_t)s * per, dtarget, dx + (size_t)s * per,
                                dnoise + (size_t)s * per, t + s, k, per);
        }
        if (m->cfg.num_classes > 0) {   // the images' own labels, drawn with the same seed as the images
            int *y = xmalloc((size_t)n * sizeof(int)), *perm = xmalloc((size_t)data->n * sizeof(int));
            rng_init(&r, ERANK_IMAGE_SEED, 0xE7A1);   // data_draw's (dataset_draw's) stream
            rng_permutation(&r, perm, (int)data->n);
            for (int i = 0; i < n; i++) y[i] = data->labels ? data->labels[perm[i]] : m->cfg.num_classes;
            dit_check_labels(&m->cfg, y, n, "the monitor's batch");
            mon->fy = ops->alloc((size_t)n * sizeof(int));
            ops->upload(mon->fy, y, (size_t)n * sizeof(int));
            free(perm);
            free(y);
        }
        ops->free(dx); ops->free(dnoise); ops->free(dtarget);
        free(x); free(noise); free(t);
    }
    return mon;
}

void monitor_free(Monitor *mon) {
    if (!mon) return;
    const Ops *o = mon->ops;
    free(mon->block_grad_sumsq);
    disp_work_free(&mon->work);
    o->free(mon->g);
    free(mon->h_g);
    o->free(mon->fxt); o->free(mon->ft); o->free(mon->fy);
    free(mon);
}

void monitor_after_forward(Monitor *mon, const Dit *m, int B) {
    int D = dit_num_tokens(&m->cfg) * m->cfg.hidden;
    double cut = -(double)mon->tau * log(1e-3);   // exp(-d / tau) > 1e-3  <=>  d < tau ln 1000
    for (int i = 0; i < mon->n_blocks; i++) {
        const float *z = m->a.blk[mon->blocks[i]].out;
        dispersive_gram_dev(&mon->work, z, B, D);
        const float *gram = mon->work.h;   // the downloaded upper triangle, as float
        double rms = 0;
        long close = 0;
        for (int a = 0; a < B; a++) {
            rms += sqrt(fmax(gram[(size_t)a * B + a], 0) / D);
            for (int b = a + 1; b < B; b++) {
                double d = fmax(gram[(size_t)a * B + a] + gram[(size_t)b * B + b] - 2.0 * gram[(size_t)a * B + b], 0) / D;
                close += d < cut;
            }
        }
        mon->feat_rms[i] = rms / B;
        mon->pair_share[i] = B > 1 ? (double)close / ((double)B * (B - 1) / 2) : 0;
        dispersive_loss_dev(&mon->work, z, B, D, (DispVariant)mon->variant, mon->tau, mon->eps, mon->g);
        ops_download_f32(mon->ops, mon->h_g, mon->g, (size_t)B * D);
        double s = 0;
        for (long k = 0; k < (long)B * D; k++) s += (double)mon->h_g[k] * mon->h_g[k];
        mon->disp_grad[i] = mon->lambda_k * sqrt(s);
    }
    for (int k = 0; k < m->cfg.depth; k++) mon->block_grad_sumsq[k] = NAN;
}

void monitor_write_step(Monitor *mon, FILE *f) {
    for (int i = 0; i < mon->n_blocks; i++) {
        int k = mon->blocks[i];
        double diff = sqrt(mon->block_grad_sumsq[k]);
        fprintf(f, ",\"feat_rms_b%d\":%.6g,\"pair_share_b%d\":%.6g,\"disp_grad_b%d\":%.6g,\"diff_grad_b%d\":%.6g,"
                "\"grad_ratio_b%d\":%.6g", k, mon->feat_rms[i], k, mon->pair_share[i], k, mon->disp_grad[i], k, diff,
                k, diff > 0 ? mon->disp_grad[i] / diff : 0.0);
    }
}

// exp(entropy of sigma / sum sigma), sigma the singular values of the centred rows of z [n, D].
static double effective_rank(const float *z, int n, int D) {
    float *zc = xmalloc((size_t)n * D * sizeof(float));
    for (int j = 0; j < D; j++) {
        double mu = 0;
        for (int i = 0; i < n; i++) mu += z[(size_t)i * D + j];
        mu /= n;
        for (int i = 0; i < n; i++) zc[(size_t)i * D + j] = (float)(z[(size_t)i * D + j] - mu);
    }
    float *g = xmalloc((size_t)n * n * sizeof(float));
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, D, 1.0f, zc, D, 0.0f, g, n);
    double *gd = xmalloc((size_t)n * n * sizeof(double)), *w = xmalloc((size_t)n * sizeof(double));
    for (int a = 0; a < n; a++)
        for (int b = a; b < n; b++) gd[(size_t)a * n + b] = gd[(size_t)b * n + a] = g[(size_t)a * n + b];
    double er = NAN;
    if (LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', n, gd, n, w) == 0) {
        double tot = 0, h = 0;
        for (int i = 0; i < n; i++) tot += w[i] = sqrt(fmax(w[i], 0));
        for (int i = 0; i < n && tot > 0; i++)
            if (w[i] > 0) h -= w[i] / tot * log(w[i] / tot);
        er = tot > 0 ? exp(h) : 0;
    }
    free(zc); free(g); free(gd); free(w);
    return er;
}

void monitor_write_erank(Monitor *mon, Dit *m, int chunk, FILE *f) {
    const DitConfig *c = &m->cfg;
    int n = mon->erank_n, T = dit_num_tokens(c), H = c->hidden, D = T * H;
    long per = (long)c->in_channels * c->height * c->width, nout = (long)dit_out_channels(c) * c->height * c->width;
    float *out = ops_alloc_f32(mon->ops, (size_t)chunk * nout);
    float **z = xmalloc((size_t)mon->n_blocks * sizeof(float *));
    for (int i = 0; i < mon->n_blocks; i++) z[i] = xmalloc((size_t)n * D * sizeof(float));
    for (int s = 0; s < n; s += chunk) {
        int k = n - s < chunk ? n - s : chunk;
        dit_forward(m, out, mon->fxt + (size_t)s * per, mon->ft + s, mon->fy ? mon->fy + s : NULL, k);
        for (int i = 0; i < mon->n_blocks; i++)
            ops_download_f32(mon->ops, z[i] + (size_t)s * D, m->a.blk[mon->blocks[i]].out, (size_t)k * D);
    }
    for (int i = 0; i < mon->n_blocks; i++) {
        fprintf(f, ",\"erank_b%d\":%.6g", mon->blocks[i], effective_rank(z[i], n, D));
        free(z[i]);
    }
    free(z);
    mon->ops->free(out);
}
