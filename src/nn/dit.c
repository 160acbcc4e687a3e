#include "nn/dit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "nn/layers.h"
#include "rng.h"

// ---------------------------------------------------------------- configuration

int dit_variant_parse(const char *name, DitConfig *cfg) {
    static const struct { const char *size; int depth, hidden, heads; } sizes[] = {
        {"S", 12, 384, 6}, {"B", 12, 768, 12}, {"L", 24, 1024, 16}, {"XL", 28, 1152, 16}};
    char size[8];
    int patch;
    if (sscanf(name, "%7[A-Z]/%d", size, &patch) != 2) return 0;
    if (patch != 2 && patch != 4 && patch != 8) return 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (strcmp(size, sizes[i].size) == 0) {
            cfg->depth = sizes[i].depth;
            cfg->hidden = sizes[i].hidden;
            cfg->heads = sizes[i].heads;
            cfg->patch = patch;
            return 1;
        }
    return 0;
}

int dit_num_tokens(const DitConfig *c) { return (c->height / c->patch) * (c->width / c->patch); }
int dit_out_channels(const DitConfig *c) { return c->learn_sigma ? 2 * c->in_channels : c->in_channels; }

const char *dit_config_error(const DitConfig *c) {
    static char msg[200];
    if (c->depth < 1 || c->hidden < 4 || c->heads < 1 || c->patch < 1 || c->in_channels < 1)
        snprintf(msg, sizeof msg, "depth, hidden, heads, patch and channels must be positive (got %d/%d/%d/%d/%d)",
                 c->depth, c->hidden, c->heads, c->patch, c->in_channels);
    else if (c->hidden % c->heads)
        snprintf(msg, sizeof msg, "hidden size %d is not divisible by %d heads", c->hidden, c->heads);
    else if (c->hidden % 4)
        snprintf(msg, sizeof msg, "hidden size %d must be a multiple of 4 (2-D sin-cos positions)", c->hidden);
    else if (c->height % c->patch || c->width % c->patch || c->height < 1 || c->width < 1)
        snprintf(msg, sizeof msg, "image size %dx%d is not divisible by the patch size %d", c->height, c->width, c->patch);
    else if (c->num_classes < 0)
        snprintf(msg, sizeof msg, "number of classes must be >= 0 (got %d)", c->num_classes);
    else if (c->mlp_ratio < 1)
        snprintf(msg, sizeof msg, "mlp ratio must be >= 1 (got %d)", c->mlp_ratio);
    else
        return NULL;
    return msg;
}

// ---------------------------------------------------------------- parameter registry

// The dimension names of DIT_PARAMS_* / DIT_ACTS, bound to a config.
#define DIT_DIMS(c)                                                                                        \
    const long H = (c)->hidden, F = (long)(c)->mlp_ratio * (c)->hidden, T = dit_num_tokens(c), P = (c)->patch, \
               CIN = (c)->in_channels, COUT = dit_out_channels(c), NCLS = (c)->num_classes;             \
    (void)H, (void)F, (void)T, (void)P, (void)CIN, (void)COUT, (void)NCLS

static void add_param(Dit *m, const char *prefix, const char *name, int trainable, int ndim, int64_t d0, int64_t d1,
                      int64_t d2, int64_t d3) {
    ParamInfo *p = &m->info[m->n_params++];
    snprintf(p->name, sizeof p->name, "%s%s", prefix, name);
    p->ndim = ndim;
    int64_t d[4] = {d0, d1, d2, d3};
    p->numel = 1;
    for (int i = 0; i < 4; i++) {
        p->shape[i] = i < ndim ? d[i] : 1;
        if (i < ndim) p->numel *= d[i];
    }
    p->offset = m->total;
    p->trainable = trainable;
    m->total += (p->numel + 15) & ~(size_t)15;   // keep every tensor 64-byte aligned
}

// Is a DIT_PARAMS_HEAD entry present in this model? Only the label table depends on the config.
#define DIT_HAS(field, ncls) (strcmp(#field, "y_table") != 0 || (ncls) > 0)
#define DIT_COUNT(field, ...) +1

// State-dict order of the reference implementation: own parameters first, then modules in order.
static void build_registry(Dit *m) {
    const DitConfig *c = &m->cfg;
    m->n_params = 0;
    m->total = 0;
    DIT_DIMS(c);
    m->info = xcalloc((size_t)(0 DIT_PARAMS_HEAD(DIT_COUNT) DIT_PARAMS_TAIL(DIT_COUNT)) +
                          (size_t)c->depth * (0 DIT_BLOCK_PARAMS(DIT_COUNT)), sizeof(ParamInfo));
    char prefix[32];
#define DIT_ADD(field, name, tr, nd, d0, d1, d2, d3) \
    if (DIT_HAS(field, NCLS)) add_param(m, prefix, name, tr, nd, d0, d1, d2, d3);
    prefix[0] = 0;
    DIT_PARAMS_HEAD(DIT_ADD)
    for (int k = 0; k < c->depth; k++) {
        snprintf(prefix, sizeof prefix, "blocks.%d.", k);
        DIT_BLOCK_PARAMS(DIT_ADD)
    }
    prefix[0] = 0;
    DIT_PARAMS_TAIL(DIT_ADD)
#undef DIT_ADD
}

const ParamInfo *dit_param(const Dit *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->info[i].name, name) == 0) return &m->info[i];
    return NULL;
}

size_t dit_trainable_count(const Dit *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->info[i].trainable ? m->info[i].numel : 0;
    return n;
}

// Binds w's pointers to base, walking the registry in the order build_registry wrote it.
static void bind_weights(const Dit *m, DitWeights *w, float *base) {
    const DitConfig *c = &m->cfg;
    const long NCLS = c->num_classes;
    int i = 0;
#define DIT_BIND(field, ...) w->field = DIT_HAS(field, NCLS) ? base + m->info[i++].offset : NULL;
#define DIT_BIND_BLK(field, ...) b->field = base + m->info[i++].offset;
    DIT_PARAMS_HEAD(DIT_BIND)
    w->blk = xcalloc(c->depth, sizeof(DitBlockWeights));
    for (int k = 0; k < c->depth; k++) {
        DitBlockWeights *b = &w->blk[k];
        DIT_BLOCK_PARAMS(DIT_BIND_BLK)
    }
    DIT_PARAMS_TAIL(DIT_BIND)
#undef DIT_BIND
#undef DIT_BIND_BLK
    if (i != m->n_params) DDM_BUG("bound %d of %d parameters", i, m->n_params);
}

ParamInfo *dit_layout(const DitConfig *cfg, int *n_params, size_t *total) {
    const char *err = dit_config_error(cfg);
    if (err) ddm_fatal("model config: %s", err);
    Dit m = {.cfg = *cfg};
    build_registry(&m);
    *n_params = m.n_params;
    *total = m.total;
    return m.info;
}

Dit *dit_create(const DitConfig *cfg, const Ops *ops) {
    Dit *m = xcalloc(1, sizeof(Dit));
    m->cfg = *cfg;
    m->ops = ops;
    m->info = dit_layout(cfg, &m->n_params, &m->total);
    m->params = ops_alloc_f32(ops, m->total);
    m->grads = ops_alloc_f32(ops, m->total);
    bind_weights(m, &m->w, m->params);
    bind_weights(m, &m->g, m->grads);
    return m;
}

// ---------------------------------------------------------------- embeddings and init

void dit_timestep_embedding(float *out, const float *t, int B) { ops_cpu.timestep_embed(out, t, B); }

// MAE-style: the first H/2 channels encode the column, the last H/2 the row; each 1-D code is sin then cos.
void dit_pos_embed_2d(float *out, int H, int gh, int gw) {
    int quarter = H / 4;
    for (int i = 0; i < gh; i++)
        for (int j = 0; j < gw; j++) {
            float *o = out + ((long)i * gw + j) * H;
            for (int k = 0; k < quarter; k++) {
                double omega = 1.0 / pow(10000.0, (double)k / quarter);
                o[k] = (float)sin(j * omega);
                o[quarter + k] = (float)cos(j * omega);
                o[2 * quarter + k] = (float)sin(i * omega);
                o[3 * quarter + k] = (float)cos(i * omega);
            }
        }
}

static void fill_xavier(Rng *r, float *w, int fan_out, int fan_in) {
    float bound = sqrtf(6.0f / (float)(fan_in + fan_out));
    for (long i = 0; i < (long)fan_out * fan_in; i++) w[i] = (2 * rng_uniform(r) - 1) * bound;
}

static void fill_normal(Rng *r, float *w, long n, float std) {
    for (long i = 0; i < n; i++) w[i] = std * rng_normal(r);
}

// SPEC §2: xavier-uniform Linears with zero bias; patch conv as a Linear on its flattened view;
// label table and timestep MLP N(0, 0.02); adaLN and final projections zero (adaLN-Zero).
void dit_init(Dit *m, uint64_t seed) {
    const DitConfig *c = &m->cfg;
    int H = c->hidden, F = c->mlp_ratio * H, T = dit_num_tokens(c);
    float *host = xcalloc(m->total, sizeof(float));   // built on the host, then uploaded
    DitWeights w;
    bind_weights(m, &w, host);
    Rng r;
    rng_init(&r, seed, 0x1417);
    dit_pos_embed_2d(w.pos, H, c->height / c->patch, c->width / c->patch);
    fill_xavier(&r, w.x_w, H, c->in_channels * c->patch * c->patch);
    fill_normal(&r, w.t0_w, (long)H * DIT_FREQ_DIM, 0.02f);
    fill_normal(&r, w.t2_w, (long)H * H, 0.02f);
    if (w.y_table) fill_normal(&r, w.y_table, (long)(c->num_classes + 1) * H, 0.02f);
    for (int k = 0; k < c->depth; k++) {
        fill_xavier(&r, w.blk[k].qkv_w, 3 * H, H);
        fill_xavier(&r, w.blk[k].proj_w, H, H);
        fill_xavier(&r, w.blk[k].fc1_w, F, H);
        fill_xavier(&r, w.blk[k].fc2_w, H, F);
    }
    (void)T;
    ops_upload_f32(m->ops, m->params, host, m->total);
    free(w.blk);
    free(host);
}

// ---------------------------------------------------------------- activations

#define DIT_SIZE(field, n) + (((size_t)B * (n) + 15) & ~(size_t)15)
#define DIT_CARVE(field, n) a->field = p; p += ((size_t)B * (n) + 15) & ~(size_t)15;
#define DIT_CARVE_BLK(field, n) b->field = p; p += ((size_t)B * (n) + 15) & ~(size_t)15;

void dit_reserve(Dit *m, int B) {
    if (B <= m->a.batch) return;
    const Ops *o = m->ops;
    const DitConfig *c = &m->cfg;
    DitActs *a = &m->a;
    DIT_DIMS(c);
    const size_t ATT = o->attention_saved_floats(1, (int)T, (int)H, c->heads);
    if (a->arena) o->free(a->arena);
    free(a->blk);
    size_t total = 0 DIT_ACTS(DIT_SIZE) + (size_t)c->depth * (0 DIT_BLOCK_ACTS(DIT_SIZE));
    float *p = a->arena = ops_alloc_f32(o, total);
    a->batch = B;
    DIT_ACTS(DIT_CARVE)
    a->blk = xcalloc(c->depth, sizeof(DitBlockActs));
    for (int k = 0; k < c->depth; k++) {
        DitBlockActs *b = &a->blk[k];
        DIT_BLOCK_ACTS(DIT_CARVE_BLK)
    }
    if ((size_t)(p - a->arena) != total) DDM_BUG("activation arena: carved %zu of %zu floats", (size_t)(p - a->arena), total);
}

void dit_free(Dit *m) {
    if (!m) return;
    m->ops->free(m->a.arena);
    free(m->a.blk);
    m->ops->free(m->params);
    m->ops->free(m->grads);
    free(m->w.blk);
    free(m->g.blk);
    free(m->info);
    free(m);
}

void dit_zero_grad(Dit *m) { m->ops->zero(m->grads, m->total); }

// ---------------------------------------------------------------- forward

static void embed_conditioning(Dit *m, const float *t, const int *y, int B) {
    const Ops *o = m->ops;
    DitActs *a = &m->a;
    int H = m->cfg.hidden;
    o->timestep_embed(a->t_freq, t, B);
    linear_forward(o, a->t_h, a->t_freq, m->w.t0_w, m->w.t0_b, B, DIT_FREQ_DIM, H);
    o->silu_fwd(a->t_act, a->t_h, (long)B * H);
    linear_forward(o, a->t_emb, a->t_act, m->w.t2_w, m->w.t2_b, B, H, H);
    o->copy(a->c, a->t_emb, (size_t)B * H);
    if (m->cfg.num_classes > 0) {
        if (!y) DDM_BUG("class-conditional model called without labels");
        o->embed_fwd(a->d_tmp_h, m->w.y_table, y, B, H);
        o->axpy(a->c, 1.0f, a->d_tmp_h, (size_t)B * H);
    }
    m->last_y = y;
    o->silu_fwd(a->c_silu, a->c, (long)B * H);
}

void dit_check_labels(const DitConfig *c, const int *y, int B, const char *what) {
    for (int b = 0; b < B; b++)
        if (y[b] < 0 || y[b] > c->num_classes)
            ddm_fatal("%s: label %d out of range [0, %d] (%d = null class)", what, y[b], c->num_classes, c->num_classes);
}

static void block_forward(Dit *m, int k, const float *xin, int B) {
    const Ops *o = m->ops;
    const DitConfig *c = &m->cfg;
    int H = c->hidden, T = dit_num_tokens(c), F = c->mlp_ratio * H, BT = B * T;
    const struct DitBlockWeights *w = &m->w.blk[k];
    DitBlockActs *a = &m->a.blk[k];
    linear_forward(o, a->mod, m->a.c_silu, w->ada_w, w->ada_b, B, H, 6 * H);
    // attention branch: mod = [shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp]
    o->ln_modulate_fwd(a->ln1, a->ln1_mean, a->ln1_rstd, xin, a->mod, a->mod + H, B, T, H, 6 * H);
    linear_forward(o, a->qkv, a->ln1, w->qkv_w, w->qkv_b, BT, H, 3 * H);
    o->attention_fwd(a->attn_y, a->att, a->qkv, B, T, H, c->heads);
    linear_forward(o, a->proj, a->attn_y, w->proj_w, w->proj_b, BT, H, H);
    o->copy(a->x_mid, xin, (size_t)BT * H);
    o->gated_residual_fwd(a->x_mid, a->mod + 2 * H, a->proj, B, T, H, 6 * H);
    // MLP branch
    o->ln_modulate_fwd(a->ln2, a->ln2_mean, a->ln2_rstd, a->x_mid, a->mod + 3 * H, a->mod + 4 * H, B, T, H, 6 * H);
    linear_forward(o, a->fc1, a->ln2, w->fc1_w, w->fc1_b, BT, H, F);
    o->gelu_fwd(a->gelu, a->fc1, (long)BT * F);
    linear_forward(o, a->fc2, a->gelu, w->fc2_w, w->fc2_b, BT, F, H);
    o->copy(a->out, a->x_mid, (size_t)BT * H);
    o->gated_residual_fwd(a->out, a->mod + 5 * H, a->fc2, B, T, H, 6 * H);
}

void dit_forward(Dit *m, float *out, const float *x, const float *t, const int *y, int B) {
    const Ops *o = m->ops;
    const DitConfig *c = &m->cfg;
    dit_reserve(m, B);
    DitActs *a = &m->a;
    int H = c->hidden, T = dit_num_tokens(c), p = c->patch, BT = B * T;
    int Cin = c->in_channels * p * p, Cout = dit_out_channels(c);
    m->last_batch = B;
    o->patchify(a->tokens, x, B, c->in_channels, c->height, c->width, p);
    linear_forward(o, a->x0, a->tokens, m->w.x_w, m->w.x_b, BT, Cin, H);
    o->add_broadcast(a->x0, m->w.pos, B, (long)T * H);
    embed_conditioning(m, t, y, B);
    for (int k = 0; k < c->depth; k++) block_forward(m, k, k ? a->blk[k - 1].out : a->x0, B);
    const float *last = a->blk[c->depth - 1].out;
    linear_forward(o, a->f_mod, a->c_silu, m->w.f_ada_w, m->w.f_ada_b, B, H, 2 * H);
    o->ln_modulate_fwd(a->lnf, a->lnf_mean, a->lnf_rstd, last, a->f_mod, a->f_mod + H, B, T, H, 2 * H);
    linear_forward(o, a->f_out, a->lnf, m->w.f_w, m->w.f_b, BT, H, p * p * Cout);
    o->unpatchify(out, a->f_out, B, Cout, c->height, c->width, p);
}

// ---------------------------------------------------------------- backward

// On entry a->d_x holds dL/d(block k output); on exit dL/d(block k input). d_c accumulates dL/d(SiLU(c)).
static void block_backward(Dit *m, int k, const float *xin, int B) {
    const Ops *o = m->ops;
    const DitConfig *c = &m->cfg;
    int H = c->hidden, T = dit_num_tokens(c), F = c->mlp_ratio * H, BT = B * T;
    const struct DitBlockWeights *w = &m->w.blk[k];
    struct DitBlockWeights *g = &m->g.blk[k];
    DitBlockActs *a = &m->a.blk[k];
    DitActs *s = &m->a;
    o->zero(s->d_mod, (size_t)B * 6 * H);
    // MLP branch; the residual passes d_x through unchanged.
    o->gated_residual_bwd(s->d_branch, s->d_mod + 5 * H, s->d_x, a->mod + 5 * H, a->fc2, B, T, H, 6 * H);
    linear_backward(o, s->d_fc, 0, g->fc2_w, g->fc2_b, s->d_branch, a->gelu, w->fc2_w, BT, F, H);
    o->gelu_bwd(s->d_fc, s->d_fc, a->fc1, (long)BT * F);
    linear_backward(o, s->d_ln, 0, g->fc1_w, g->fc1_b, s->d_fc, a->ln2, w->fc1_w, BT, H, F);
    o->ln_modulate_bwd(s->d_x, s->d_mod + 3 * H, s->d_mod + 4 * H, s->d_ln, a->x_mid, a->ln2_mean, a->ln2_rstd,
                       a->mod + 4 * H, B, T, H, 6 * H);
    // attention branch
    o->gated_residual_bwd(s->d_branch, s->d_mod + 2 * H, s->d_x, a->mod + 2 * H, a->proj, B, T, H, 6 * H);
    linear_backward(o, s->d_attn_y, 0, g->proj_w, g->proj_b, s->d_branch, a->attn_y, w->proj_w, BT, H, H);
    o->attention_bwd(s->d_qkv, s->d_attn_y, a->qkv, a->attn_y, a->att, B, T, H, c->heads);
    linear_backward(o, s->d_ln, 0, g->qkv_w, g->qkv_b, s->d_qkv, a->ln1, w->qkv_w, BT, H, 3 * H);
    o->ln_modulate_bwd(s->d_x, s->d_mod, s->d_mod + H, s->d_ln, xin, a->ln1_mean, a->ln1_rstd, a->mod + H,
                       B, T, H, 6 * H);
    linear_backward(o, s->d_c, 1, g->ada_w, g->ada_b, s->d_mod, s->c_silu, w->ada_w, B, H, 6 * H);
}

static void conditioning_backward(Dit *m, int B) {
    const Ops *o = m->ops;
    DitActs *a = &m->a;
    int H = m->cfg.hidden;
    o->silu_bwd(a->d_c, a->d_c, a->c, (long)B * H);       // now dL/dc
    if (m->cfg.num_classes > 0) o->embed_bwd(m->g.y_table, a->d_c, m->last_y, B, H);
    linear_backward(o, a->d_tmp_h, 0, m->g.t2_w, m->g.t2_b, a->d_c, a->t_act, m->w.t2_w, B, H, H);
    o->silu_bwd(a->d_tmp_h, a->d_tmp_h, a->t_h, (long)B * H);
    linear_backward(o, NULL, 0, m->g.t0_w, m->g.t0_b, a->d_tmp_h, a->t_freq, m->w.t0_w, B, DIT_FREQ_DIM, H);
}

void dit_backward(Dit *m, const float *d_out, float *const *extra_block_grads, float *d_x) {
    const Ops *o = m->ops;
    const DitConfig *c = &m->cfg;
    DitActs *a = &m->a;
    int B = m->last_batch, H = c->hidden, T = dit_num_tokens(c), p = c->patch, BT = B * T, D = c->depth;
    int Cin = c->in_channels * p * p, Cout = dit_out_channels(c);
    o->unpatchify_bwd(a->d_f_out, d_out, B, Cout, c->height, c->width, p);
    linear_backward(o, a->d_ln, 0, m->g.f_w, m->g.f_b, a->d_f_out, a->lnf, m->w.f_w, BT, H, p * p * Cout);
    o->zero(a->d_x, (size_t)BT * H);
    o->zero(a->d_mod, (size_t)B * 2 * H);
    o->ln_modulate_bwd(a->d_x, a->d_mod, a->d_mod + H, a->d_ln, a->blk[D - 1].out, a->lnf_mean, a->lnf_rstd,
                       a->f_mod + H, B, T, H, 2 * H);
    linear_backward(o, a->d_c, 0, m->g.f_ada_w, m->g.f_ada_b, a->d_mod, a->c_silu, m->w.f_ada_w, B, H, 2 * H);
    for (int k = D - 1; k >= 0; k--) {
        if (m->block_grad_sumsq) m->block_grad_sumsq[k] = o->sumsq(a->d_x, (size_t)BT * H);
        if (extra_block_grads && extra_block_grads[k]) o->axpy(a->d_x, 1.0f, extra_block_grads[k], (size_t)BT * H);
        block_backward(m, k, k ? a->blk[k - 1].out : a->x0, B);
    }
    // pos_embed is frozen: its gradient is never formed.
    linear_backward(o, d_x ? a->d_fc : NULL, 0, m->g.x_w, m->g.x_b, a->d_x, a->tokens, m->w.x_w, BT, Cin, H);
    if (d_x) o->patchify_bwd(d_x, a->d_fc, B, c->in_channels, c->height, c->width, p);
    conditioning_backward(m, B);
}

// Matrix-multiply FLOPs of one forward pass (2 per multiply-add, as GEMM peaks are counted; the DiT
// paper counts 1). Element-wise work is left out, as it is in every published count.
double dit_forward_flops(const DitConfig *c, int B) {
    double H = c->hidden, T = dit_num_tokens(c), F = (double)c->mlp_ratio * H, P = (double)c->patch * c->patch;
    double hd = H / c->heads, macs = 0;
    macs += B * T * (c->in_channels * P) * H;                         // patch embedding
    macs += B * (DIT_FREQ_DIM * H + H * H);                           // timestep MLP
    double block = B * H * 6 * H                                      // adaLN
                   + B * T * H * 3 * H                                // qkv
                   + 2.0 * B * c->heads * T * T * hd                  // QK^T and PV
                   + B * T * H * H                                    // proj
                   + 2 * B * T * H * F;                               // fc1, fc2
    macs += c->depth * block;
    macs += B * H * 2 * H + B * T * H * P * dit_out_channels(c);      // final layer
    return 2 * macs;
}
