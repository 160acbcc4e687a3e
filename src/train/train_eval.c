#include "train/train_eval.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "eval/classifier.h"
#include "eval/feature_sets.h"
#include "infer/generate.h"

struct TrainEval {
    Classifier *cls;
    int n, dim;
    float *ref_feats;   // [n, dim] features of the fixed draw of training images
    float *saved;       // the raw weights while the EMA weights are loaded (device, model layout)
    const Ops *ops;     // saved's allocator
    GenerateOpts gen;
};

TrainEval *train_eval_create(const TrainConfig *c, DataSource *train_data) {
    if (c->eval_every <= 0) return NULL;
    if (!c->eval_classifier[0])
        ddm_fatal("--eval-every needs --eval-classifier FILE (train one with `ddm classifier train`)");
    if (strcmp(c->objective, "sit_linear") && strcmp(c->objective, "sit_gvp") && strcmp(c->objective, "ddpm"))
        ddm_fatal("--eval-every: the %s objective has no sampler to evaluate (use ddm probe)", c->objective);
    if (c->eval_n > train_data->n)
        ddm_fatal("--eval-n %d: the training split has %lld images", c->eval_n, (long long)train_data->n);
    TrainEval *e = xmalloc(sizeof *e);
    memset(e, 0, sizeof *e);
    e->cls = classifier_load(c->eval_classifier);
    if (e->cls->channels != train_data->c || e->cls->height != train_data->h || e->cls->width != train_data->w)
        ddm_fatal("--eval-classifier %s takes %dx%dx%d images, the data are %dx%dx%d", c->eval_classifier,
                  e->cls->channels, e->cls->height, e->cls->width, train_data->c, train_data->h, train_data->w);
    e->n = c->eval_n;
    e->dim = classifier_feature_dim(e->cls);
    float *ref = data_draw(train_data, e->n, c->seed);
    e->ref_feats = classifier_features_all(e->cls, ref, e->n);
    free(ref);
    generate_opts_defaults(&e->gen);
    e->gen.steps = c->eval_steps;
    e->gen.seed = c->seed;   // as `ddm eval --seed` with the run's seed: the last figure can be re-checked
    return e;
}

double train_eval_fd(TrainEval *e, Dit *m, const float *ema, const TrainConfig *c, float *grid, int grid_n) {
    if (!e->saved) e->saved = ops_alloc_f32(m->ops, m->total), e->ops = m->ops;
    m->ops->copy(e->saved, m->params, m->total);
    m->ops->copy(m->params, ema, m->total);
    GenerateOpts g = e->gen;
    generate_resolve(&g, m, c, "the model being trained");
    float *x = generate_samples(m, c, &g, e->n, NULL);
    m->ops->copy(m->params, e->saved, m->total);
    if (grid) memcpy(grid, x, (size_t)(grid_n < e->n ? grid_n : e->n) * m->cfg.in_channels * m->cfg.height * m->cfg.width * sizeof(float));
    float *f = classifier_features_all(e->cls, x, e->n);
    double fd = fd_of_features(e->ref_feats, e->n, f, e->n, e->dim, "--eval-n samples");
    free(x);
    free(f);
    return fd;
}

void train_eval_free(TrainEval *e) {
    if (!e) return;
    classifier_free(e->cls);
    free(e->ref_feats);
    if (e->saved) e->ops->free(e->saved);
    free(e);
}
