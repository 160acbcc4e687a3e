// The public model API of include/ddm.h over the internal model.
#include "ddm.h"
#include <stdlib.h>
#include "common.h"
#include "train/model_load.h"

struct ddm_model { Dit *dit; };

ddm_model *ddm_model_load(const char *ckpt_path, int use_ema) {
    TrainConfig cfg;
    ddm_model *m = xmalloc(sizeof *m);
    m->dit = model_load(ckpt_path, use_ema, &cfg);
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

void ddm_model_forward(ddm_model *m, const float *x, const float *t, const int *y, int batch, float *out) {
    dit_forward(m->dit, out, x, t, m->dit->cfg.num_classes ? y : NULL, batch);
}

const float *ddm_model_block_output(const ddm_model *m, int k) {
    if (k < 0 || k >= m->dit->cfg.depth) ddm_fatal("block %d does not exist (the model has blocks 0 to %d)", k, m->dit->cfg.depth - 1);
    return m->dit->a.blk[k].out;
}

void ddm_model_free(ddm_model *m) {
    if (!m) return;
    dit_free(m->dit);
    free(m);
}
