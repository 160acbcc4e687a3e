// The public C API of include/ddm.h over the internal modules: the only file that includes the public header,
// and a named place where tensors cross between the caller's (host) memory and the model's device.
#include "ddm.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "loss/dispersive.h"
#include "model/model_load.h"
#include "tok/pca.h"
#include "data/data.h"
#include "io/tfevents.h"

// ---------------------------------------------------------------- Dispersive Loss

float ddm_dispersive_loss(const float *z, int batch, int dim, const char *variant, float tau, float eps, float *dz) {
    int v = dispersive_variant_parse(variant);
    if (v < 0) {
        char names[128] = "";
        for (int i = 0; i <= DISP_COVARIANCE; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     dispersive_variant_name((DispVariant)i));
        ddm_fatal("unknown dispersive loss variant '%s' (valid: %s)", variant ? variant : "(null)", names);
    }
    if (batch < 0 || (batch >= 2 && dim < 1))
        ddm_fatal("dispersive loss: bad shape batch=%d dim=%d (expected batch >= 0, dim >= 1)", batch, dim);
    if ((v == DISP_INFONCE_L2 || v == DISP_INFONCE_COS) && !(tau > 0 && isfinite(tau)))
        ddm_fatal("dispersive loss: tau must be a finite number > 0 for %s (got %g)", dispersive_variant_name((DispVariant)v), tau);
    return dispersive_loss_f32(z, batch, dim, (DispVariant)v, tau, eps, dz);
}

// ---------------------------------------------------------------- the model

struct ddm_model {
    Dit *dit;
    int cap;                 // batch the device buffers hold
    float *x, *t, *out;      // device
    int *y;                  // device
    float *block;            // host copy of the last forward's block outputs [depth][cap, T, H] (on demand)
    int *block_ok;           // [depth]: block k of the last forward is in `block`
    int last_batch;
};

ddm_model *ddm_model_load(const char *ckpt_path, int use_ema) {
    TrainConfig cfg;
    const char *err;
    const Ops *ops = ops_select(ops_default_device(), "fp32", &err);
    if (!ops) ddm_fatal("%s", err);
    ddm_model *m = xcalloc(1, sizeof *m);
    m->dit = model_load(ckpt_path, use_ema, ops, &cfg);
    m->block_ok = xcalloc((size_t)cfg.model.depth, sizeof(int));
    return m;
}

void ddm_model_info(const ddm_model *m, int *channels, int *height, int *width, int *num_classes, int *depth,
                    int *hidden, int *out_channels) {
    const DitConfig *c = &m->dit->cfg;
    if (channels) *channels = c->in_channels;
    if (height) *height = c->height;
    if (width) *width = c->width;
    if (num_classes) *num_classes = c->num_classes;
    if (depth) *depth = c->depth;
    if (hidden) *hidden = c->hidden;
    if (out_channels) *out_channels = dit_out_channels(c);
}

static void reserve(ddm_model *m, int B) {
    if (B <= m->cap) return;
    const Ops *o = m->dit->ops;
    const DitConfig *c = &m->dit->cfg;
    long hw = (long)c->height * c->width;
    o->free(m->x); o->free(m->t); o->free(m->out); o->free(m->y);
    m->x = ops_alloc_f32(o, (size_t)B * c->in_channels * hw);
    m->t = ops_alloc_f32(o, B);
    m->out = ops_alloc_f32(o, (size_t)B * dit_out_channels(c) * hw);
    m->y = o->alloc((size_t)B * sizeof(int));
    free(m->block);
    m->block = xmalloc((size_t)c->depth * B * dit_num_tokens(c) * c->hidden * sizeof(float));
    m->cap = B;
}

void ddm_model_forward(ddm_model *m, const float *x, const float *t, const int *y, int batch, float *out) {
    const Ops *o = m->dit->ops;
    const DitConfig *c = &m->dit->cfg;
    if (batch < 1) ddm_fatal("ddm_model_forward: batch %d, expected at least 1", batch);
    long hw = (long)c->height * c->width;
    reserve(m, batch);
    ops_upload_f32(o, m->x, x, (size_t)batch * c->in_channels * hw);
    ops_upload_f32(o, m->t, t, (size_t)batch);
    int conditional = c->num_classes > 0;
    if (conditional) {
        if (!y) ddm_fatal("ddm_model_forward: the model is class-conditional: labels are needed (%d = null class)", c->num_classes);
        dit_check_labels(c, y, batch, "ddm_model_forward");
        o->upload(m->y, y, (size_t)batch * sizeof(int));
    }
    dit_forward(m->dit, m->out, m->x, m->t, conditional ? m->y : NULL, batch);
    ops_download_f32(o, out, m->out, (size_t)batch * dit_out_channels(c) * hw);
    memset(m->block_ok, 0, (size_t)c->depth * sizeof(int));
    m->last_batch = batch;
}

const float *ddm_model_block_output(const ddm_model *m, int k) {
    const DitConfig *c = &m->dit->cfg;
    if (k < 0 || k >= c->depth) ddm_fatal("block %d does not exist (the model has blocks 0 to %d)", k, c->depth - 1);
    if (!m->last_batch) ddm_fatal("ddm_model_block_output: no forward pass yet");
    size_t n = (size_t)m->last_batch * dit_num_tokens(c) * c->hidden;
    float *dst = m->block + (size_t)k * m->cap * dit_num_tokens(c) * c->hidden;
    if (!m->block_ok[k]) {   // downloaded once per forward, on the first request
        ops_download_f32(m->dit->ops, dst, m->dit->a.blk[k].out, n);
        m->block_ok[k] = 1;
    }
    return dst;
}

void ddm_model_free(ddm_model *m) {
    if (!m) return;
    const Ops *o = m->dit->ops;
    o->free(m->x); o->free(m->t); o->free(m->out); o->free(m->y);
    free(m->block);
    free(m->block_ok);
    dit_free(m->dit);
    free(m);
}

// ---------------------------------------------------------------- the PCA tokenizer

struct ddm_pca { Pca *pca; };

ddm_pca *ddm_pca_load(const char *path) {
    ddm_pca *p = xmalloc(sizeof *p);
    p->pca = pca_load(path);
    return p;
}

int ddm_pca_dim(const ddm_pca *p) { return p->pca->d; }

void ddm_pca_encode(const ddm_pca *p, const float *imgs, int n, int channels, int height, int width, float *latents) {
    pca_check_images(p->pca, channels, height, width, "ddm_pca_encode");
    pca_encode(p->pca, imgs, n, height, width, latents);
}

void ddm_pca_decode(const ddm_pca *p, const float *latents, int n, int channels, int height, int width, float *imgs) {
    pca_check_images(p->pca, channels, height, width, "ddm_pca_decode");
    pca_decode(p->pca, latents, n, height, width, imgs);
}

void ddm_pca_free(ddm_pca *p) {
    if (!p) return;
    pca_free(p->pca);
    free(p);
}

// ---------------------------------------------------------------- datasets and TensorBoard
struct ddm_data { DataSource *d; };
struct ddm_tensorboard { TfEvents *t; };

ddm_data *ddm_data_open(const char *path, const char *format, const char *split, int image_size) {
    DataSpec s;
    data_spec_defaults(&s);
    snprintf(s.path, sizeof s.path, "%s", path);
    snprintf(s.format, sizeof s.format, "%s", format ? format : "auto");
    s.image_size = image_size;
    ddm_data *h = xmalloc(sizeof *h);
    h->d = data_open(&s, split ? split : "train", 1);
    return h;
}

void ddm_data_info(const ddm_data *h, long long *n, int *channels, int *height, int *width, int *num_classes) {
    if (n) *n = h->d->n;
    if (channels) *channels = h->d->c;
    if (height) *height = h->d->h;
    if (width) *width = h->d->w;
    if (num_classes) *num_classes = h->d->num_classes;
}

int ddm_data_read(ddm_data *h, long long i, float *x, int *label, char *err, size_t err_cap) {
    char buf[1200];
    if (data_read(h->d, i, x, err ? err : buf, err ? err_cap : sizeof buf) != 0) return -1;
    if (label) *label = h->d->labels ? h->d->labels[i] : -1;
    return 0;
}

char *ddm_data_describe(const ddm_data *h) { return data_describe_json(h->d); }

void ddm_data_close(ddm_data *h) {
    if (!h) return;
    data_close(h->d);
    free(h);
}

ddm_tensorboard *ddm_tensorboard_open(const char *dir) {
    ddm_tensorboard *t = xmalloc(sizeof *t);
    t->t = tfevents_open(dir, 0);
    return t;
}

void ddm_tensorboard_scalar(ddm_tensorboard *t, const char *tag, long long step, float value) {
    tfevents_scalar(t->t, tag, step, value);
}

void ddm_tensorboard_images(ddm_tensorboard *t, const char *tag, long long step, const float *imgs, int n, int channels,
                            int height, int width, float lo, float hi) {
    int ncols = (int)ceil(sqrt((double)n));
    tfevents_image_grid(t->t, tag, step, imgs, n, channels, height, width, ncols, lo, hi);
}

void ddm_tensorboard_close(ddm_tensorboard *t) {
    if (!t) return;
    tfevents_close(t->t);
    free(t);
}
