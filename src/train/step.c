#include "train/step.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "dist/dist.h"
#include "ops/profile.h"
#include "train/monitor.h"

void disp_setup_init(DispSetup *d, const Dit *m, int variant, float lambda, float tau, float eps,
                     const int *blocks, int n_blocks, int B) {
    d->variant = lambda == 0 ? -1 : variant;
    d->lambda = lambda; d->tau = tau; d->eps = eps;
    d->extra = xcalloc(m->cfg.depth, sizeof(float *));
    d->mon = NULL;
    d->n_blocks = d->variant < 0 ? 0 : n_blocks;
    long D = (long)dit_num_tokens(&m->cfg) * m->cfg.hidden;
    for (int i = 0; i < d->n_blocks; i++) {
        int k = blocks[i];
        if (k < 0 || k >= m->cfg.depth) ddm_fatal("Dispersive Loss block %d does not exist (blocks 0 to %d)", k, m->cfg.depth - 1);
        if (d->extra[k]) ddm_fatal("Dispersive Loss block %d is listed twice", k);
        d->blocks[i] = k;
        d->grad[i] = ops_alloc_f32(m->ops, (size_t)B * D);
        d->extra[k] = d->grad[i];
    }
    memset(&d->work, 0, sizeof d->work);
    d->ranks = d->rank = 0;
    d->zg = d->dzg = d->h_local = d->h_global = NULL;
    if (d->n_blocks) disp_work_init(&d->work, m->ops, B);
}

void disp_setup_free(DispSetup *d, const Dit *m) {
    for (int i = 0; i < d->n_blocks; i++) m->ops->free(d->grad[i]);
    disp_work_free(&d->work);
    free(d->extra);
    if (d->ranks) {
        m->ops->free(d->zg);
        m->ops->free(d->dzg);
        free(d->h_local);
        free(d->h_global);
    }
}

void disp_setup_gather(DispSetup *d, const Dit *m, int ranks, int rank, int B) {
    size_t D = (size_t)dit_num_tokens(&m->cfg) * m->cfg.hidden;
    d->ranks = ranks;
    d->rank = rank;
    d->zg = ops_alloc_f32(m->ops, (size_t)ranks * B * D);
    d->dzg = ops_alloc_f32(m->ops, (size_t)ranks * B * D);
    d->h_local = xmalloc((size_t)B * D * sizeof(float));
    d->h_global = xmalloc((size_t)ranks * B * D * sizeof(float));
    if (d->n_blocks) {   // the Gram matrix is of the global batch
        disp_work_free(&d->work);
        disp_work_init(&d->work, m->ops, ranks * B);
    }
}

// The average over the chosen blocks, so lambda keeps its meaning with a list (SPEC §1.1).
static float dispersive_forward_backward(Dit *m, DispSetup *d, int B, double *seconds) {
    *seconds = 0;
    if (d->n_blocks == 0) return 0;
    double t0 = now_seconds();
    int D = dit_num_tokens(&m->cfg) * m->cfg.hidden;
    float total = 0, w = d->lambda / d->n_blocks;
    for (int i = 0; i < d->n_blocks; i++) {
        const float *z = m->a.blk[d->blocks[i]].out;
        if (d->ranks) {   // the global batch: every rank computes the same loss, keeps its rows' gradient
            dist_allgather_dev(m->ops, z, d->zg, (size_t)B * D, d->h_local, d->h_global);
            total += dispersive_loss_dev(&d->work, d->zg, d->ranks * B, D, (DispVariant)d->variant, d->tau, d->eps,
                                         d->dzg);
            m->ops->copy(d->grad[i], d->dzg + (size_t)d->rank * B * D, (size_t)B * D);
            m->ops->scale(d->grad[i], w * d->ranks, (size_t)B * D);
        } else {
            total += dispersive_loss_dev(&d->work, z, B, D, (DispVariant)d->variant, d->tau, d->eps, d->grad[i]);
            m->ops->scale(d->grad[i], w, (size_t)B * D);
        }
    }
    *seconds = now_seconds() - t0;
    return total / d->n_blocks;
}

void step_batch_init(StepBatch *b, const Dit *m, int B) {
    const DitConfig *c = &m->cfg;
    const Ops *o = m->ops;
    memset(b, 0, sizeof *b);
    b->ops = o;
    b->cap = B;
    b->n = (long)c->in_channels * c->height * c->width;
    b->nout = (long)dit_out_channels(c) * c->height * c->width;
    size_t Bn = (size_t)B * b->n;
    b->h_x = xmalloc(Bn * sizeof(float));
    b->h_noise = xmalloc(Bn * sizeof(float));
    b->h_t = xmalloc((size_t)B * sizeof(float));
    b->h_y = xcalloc((size_t)B, sizeof(int));
    b->x = ops_alloc_f32(o, Bn);
    b->noise = ops_alloc_f32(o, Bn);
    b->xt = ops_alloc_f32(o, Bn);
    b->target = ops_alloc_f32(o, Bn);
    b->t = ops_alloc_f32(o, B);
    b->out = ops_alloc_f32(o, (size_t)B * b->nout);
    b->d_out = ops_alloc_f32(o, (size_t)B * b->nout);
    b->y = o->alloc((size_t)B * sizeof(int));
}

void step_batch_free(StepBatch *b) {
    const Ops *o = b->ops;
    if (!o) return;
    free(b->h_x); free(b->h_noise); free(b->h_t); free(b->h_y);
    float *dev[] = {b->x, b->noise, b->xt, b->target, b->t, b->out, b->d_out};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) o->free(dev[i]);
    o->free(b->y);
    memset(b, 0, sizeof *b);
}

void step_upload(StepBatch *b, const Dit *m, int B) {
    const Ops *o = b->ops;
    if (B > b->cap) DDM_BUG("batch of %d for buffers of %d", B, b->cap);
    ops_upload_f32(o, b->x, b->h_x, (size_t)B * b->n);
    ops_upload_f32(o, b->noise, b->h_noise, (size_t)B * b->n);
    ops_upload_f32(o, b->t, b->h_t, (size_t)B);
    if (m->cfg.num_classes > 0) {
        dit_check_labels(&m->cfg, b->h_y, B, "training batch");
        o->upload(b->y, b->h_y, (size_t)B * sizeof(int));
    }
}

LossParts step_loss_and_grads(Dit *m, const Objective *o, DispSetup *d, StepBatch *b, int B, float *d_xt) {
    const DitConfig *c = &m->cfg;
    long HW = (long)c->height * c->width;
    LossParts s;
    objective_make_pair(o, b->xt, b->target, b->x, b->noise, b->h_t, B, b->n);
    ops_profile_phase(PHASE_FORWARD);
    dit_zero_grad(m);
    dit_forward(m, b->out, b->xt, b->t, c->num_classes ? b->y : NULL, B);
    s.diff = objective_loss(o, b->out, b->target, b->h_t, B, c->in_channels, dit_out_channels(c), HW, b->d_out);
    s.disp = dispersive_forward_backward(m, d, B, &s.disp_seconds);
    s.total = s.diff + (d->n_blocks ? d->lambda * s.disp : 0);
    if (d->mon && d->mon->due) {
        monitor_after_forward(d->mon, m, B);
        m->block_grad_sumsq = d->mon->block_grad_sumsq;
    }
    ops_profile_phase(PHASE_BACKWARD);
    dit_backward(m, b->d_out, d->extra, d_xt);
    m->block_grad_sumsq = NULL;
    ops_profile_phase(PHASE_OPTIMIZER);
    return s;
}

void optim_init(OptimState *s, const Dit *m) {
    s->m = ops_alloc_f32(m->ops, m->total);
    s->v = ops_alloc_f32(m->ops, m->total);
    s->ema = ops_alloc_f32(m->ops, m->total);
    m->ops->copy(s->ema, m->params, m->total);
}

void optim_free(OptimState *s, const Dit *m) {
    m->ops->free(s->m);
    m->ops->free(s->v);
    m->ops->free(s->ema);
}

float optim_clip(Dit *m, float max_norm) {
    float norm = (float)sqrt(m->ops->sumsq(m->grads, m->total));
    if (max_norm > 0 && norm > max_norm) m->ops->scale(m->grads, max_norm / (norm + 1e-6f), m->total);
    return norm;
}

void optim_adamw(Dit *m, OptimState *s, int64_t step_index, float lr, float beta1, float beta2, float eps, float wd) {
    double k = (double)(step_index + 1);
    float bc1 = (float)(1 - pow(beta1, k)), bc2 = (float)(1 - pow(beta2, k));
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        if (!p->trainable) continue;   // frozen pos_embed: no update, no weight decay
        m->ops->adamw(m->params + p->offset, m->grads + p->offset, s->m + p->offset, s->v + p->offset, p->numel,
                      lr, beta1, beta2, eps, wd, bc1, bc2);
    }
}

void optim_ema(const Dit *m, OptimState *s, float decay) { m->ops->ema(s->ema, m->params, m->total, decay); }
