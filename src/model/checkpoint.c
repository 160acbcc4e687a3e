#include "model/checkpoint.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "config/config.h"

static void add_all(StWriter *w, const Dit *m, const char *prefix, const float *host, char **names, int *nn) {
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        char *name = xmalloc(strlen(prefix) + strlen(p->name) + 1);
        sprintf(name, "%s%s", prefix, p->name);
        names[(*nn)++] = name;
        st_writer_add(w, name, ST_F32, p->ndim, p->shape, host + p->offset);
    }
}

void checkpoint_save(const char *path, const CheckpointOut *c) {
    const Dit *m = c->model;
    const float *src[4] = {m->params, c->ema, c->opt_m, c->opt_v};
    const char *prefixes[4] = {"", "ema.", "opt.m.", "opt.v."};
    float *host[4] = {0};
    char **names = xcalloc((size_t)4 * m->n_params, sizeof(char *));
    int nn = 0;
    StWriter *w = st_writer_new();
    for (int k = 0; k < 4; k++) {
        if (!src[k]) continue;
        host[k] = xmalloc(m->total * sizeof(float));
        ops_download_f32(m->ops, host[k], src[k], m->total);
        add_all(w, m, prefixes[k], host[k], names, &nn);
    }
    if (c->pca) pca_st_add(w, c->pca, "pca.");
    char buf[64];
    st_writer_meta(w, "format", "ddm-dit-1");
    st_writer_meta(w, "config", c->config_json);
    if (c->dataset_json) st_writer_meta(w, "dataset", c->dataset_json);
    snprintf(buf, sizeof buf, "%" PRId64, c->step);
    st_writer_meta(w, "step", buf);
    snprintf(buf, sizeof buf, "%" PRIu64, c->seed);
    st_writer_meta(w, "seed", buf);
    st_writer_meta(w, "rng", "xoshiro256** streams derived from (seed, step)");
    st_writer_write(w, path);
    st_writer_free(w);
    for (int k = 0; k < 4; k++) free(host[k]);
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
}

StFile *checkpoint_open(const char *path) {
    if (!file_exists(path)) ddm_fatal("checkpoint '%s' does not exist", path);
    return st_load(path);
}

const char *checkpoint_config(const StFile *f) {
    const char *cfg = st_meta(f, "config");
    if (!cfg) ddm_fatal("%s: not a ddm model checkpoint (no \"config\" in its metadata)", f->path);
    return cfg;
}

int64_t checkpoint_step(const StFile *f) {
    const char *s = st_meta(f, "step");
    if (!s) return 0;
    int64_t v = 0;   // digits only, bounded as they are read: a crafted "-5" or "1e30" is no step
    const char *p = s;
    for (; *p >= '0' && *p <= '9' && v <= TRAIN_MAX_STEPS; p++) v = v * 10 + (*p - '0');
    if (p == s || *p || v > TRAIN_MAX_STEPS)
        ddm_fatal("%s: metadata step '%.40s': expected a whole number from 0 to %d", f->path, s, TRAIN_MAX_STEPS);
    return v;
}

Pca *checkpoint_pca(const StFile *f) { return st_find(f, "pca.basis") ? pca_st_read(f, "pca.") : NULL; }

int checkpoint_load_tensors(const StFile *f, const Dit *m, const char *prefix, float *dst, int optional) {
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, m->info[0].name);
    if (optional && !st_find(f, name)) return 0;
    float *host = xcalloc(m->total, sizeof(float));
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        const float *src = st_get_f32(f, name, p->ndim, p->shape);
        memcpy(host + p->offset, src, p->numel * sizeof(float));
    }
    ops_upload_f32(m->ops, dst, host, m->total);
    free(host);
    return 1;
}

void checkpoint_check_shapes(const StFile *f, const DitConfig *cfg, const char *prefix) {
    int n;
    size_t total;
    ParamInfo *info = dit_layout(cfg, &n, &total);
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, info[0].name);
    if (!*prefix || st_find(f, name))   // an absent optional set (EMA) is for the loader to report
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "%s%s", prefix, info[i].name);
            st_get_f32(f, name, info[i].ndim, info[i].shape);
        }
    free(info);
}
