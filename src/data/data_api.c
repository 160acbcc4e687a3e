// The public C API (include/ddm.h) over data.h and io/tfevents.h.
#include <math.h>
#include <stdlib.h>
#include "ddm.h"
#include "common.h"
#include "data/data.h"
#include "io/tfevents.h"

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
