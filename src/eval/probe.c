// Feature extraction and the linear / k-NN probes (see probe.h).
#include "eval/probe.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "loss/objective.h"
#include "rng.h"

// ---------------------------------------------------------------- features

float probe_default_t(const char *objective) {
    return objective && (!strcmp(objective, "ddpm") || !strcmp(objective, "ldae") || !strcmp(objective, "denoise")) ? 10.0f
                                                                                                                   : 0.99f;
}

const char *probe_t_error(const char *objective, float t) {
    int kind = objective_parse(objective);
    return objective_t_error(kind < 0 ? OBJ_SIT_LINEAR : (ObjectiveKind)kind, t);
}

float *probe_features(Dit *m, const char *objective, const Pca *pca, const Dataset *d, int block, float t, int batch,
                      uint64_t seed) {
    int kind = objective_parse(objective);
    if (kind < 0) ddm_fatal("unknown objective '%s' (sit_linear, sit_gvp, ddpm or ldae)", objective);
    if (kind == OBJ_DENOISE) DDM_BUG("probe_features: a denoise objective needs its settings (probe_features_objective)");
    Objective obj;
    objective_init(&obj, (ObjectiveKind)kind);
    if (kind == OBJ_LDAE) {
        if (!pca) ddm_fatal("an l-DAE (ldae) model needs its PCA tokenizer to build its input");
        objective_set_pca(&obj, pca, d->c, d->h, d->w, "the l-DAE model's PCA tokenizer");
    }
    return probe_features_objective(m, &obj, d, block, t, batch, seed);
}

float *probe_features_objective(Dit *m, const Objective *objp, const Dataset *d, int block, float t, int batch,
                                uint64_t seed) {
    float *feat;
    probe_features_blocks(m, objp, d, &block, 1, t, batch, seed, &feat);
    return feat;
}

void probe_features_blocks(Dit *m, const Objective *objp, const Dataset *d, const int *blocks, int nblocks, float t,
                           int batch, uint64_t seed, float **feats) {
    const DitConfig *c = &m->cfg;
    if (d->c != c->in_channels || d->h != c->height || d->w != c->width)
        ddm_fatal("the model takes %dx%dx%d images (channels x height x width), the data are %dx%dx%d", c->in_channels,
                  c->height, c->width, d->c, d->h, d->w);
    for (int i = 0; i < nblocks; i++)
        if (blocks[i] < 0 || blocks[i] >= c->depth) ddm_fatal("--block %d: the model has blocks 0 to %d", blocks[i], c->depth - 1);
    const char *te = objective_t_error(objp->kind, t);
    if (te) ddm_fatal("--t %g: %s", t, te);
    if (batch < 1) DDM_BUG("batch %d", batch);
    if (objective_uses_pca(objp) && !objp->pca) DDM_BUG("probe_features_objective: no PCA tokenizer set");
    Objective obj = *objp;   // a copy of its own on the model's device, for batches of B
    obj.single_t = -1;
    obj.dev = NULL;
    const Ops *o = m->ops;
    int H = c->hidden, T = dit_num_tokens(c), Cout = dit_out_channels(c);
    long n = (long)d->c * d->h * d->w;
    int B = batch < d->n ? batch : d->n;
    if (B < 1) B = 1;
    objective_bind(&obj, o, B);
    float *noise = xmalloc((size_t)B * n * sizeof(float)), *tt = xmalloc((size_t)B * sizeof(float));
    float *z = xmalloc((size_t)B * T * H * sizeof(float));
    float *dx = ops_alloc_f32(o, (size_t)B * n), *dnoise = ops_alloc_f32(o, (size_t)B * n);
    float *dxt = ops_alloc_f32(o, (size_t)B * n), *dtarget = ops_alloc_f32(o, (size_t)B * n);
    float *dt = ops_alloc_f32(o, B), *dout = ops_alloc_f32(o, (size_t)B * Cout * c->height * c->width);
    int *dy = NULL;
    if (c->num_classes > 0) {   // the null class: no label information
        int *y = xmalloc((size_t)B * sizeof(int));
        for (int b = 0; b < B; b++) y[b] = c->num_classes;
        dy = o->alloc((size_t)B * sizeof(int));
        o->upload(dy, y, (size_t)B * sizeof(int));
        free(y);
    }
    for (int b = 0; b < B; b++) tt[b] = t;
    ops_upload_f32(o, dt, tt, B);
    for (int i = 0; i < nblocks; i++) feats[i] = xmalloc((size_t)d->n * H * sizeof(float));
    for (int s = 0; s < d->n; s += B) {
        int k = d->n - s < B ? d->n - s : B;
        for (int b = 0; b < k; b++) {
            Rng r;
            rng_init(&r, seed, (uint64_t)(s + b));
            rng_normal_fill(&r, noise + (size_t)b * n, n);
        }
        // feature extraction's copies: the images and their noise up, the block outputs down
        ops_upload_f32(o, dx, d->images + (size_t)s * n, (size_t)k * n);
        ops_upload_f32(o, dnoise, noise, (size_t)k * n);
        objective_make_pair(&obj, dxt, dtarget, dx, dnoise, tt, k, n);
        dit_forward(m, dout, dxt, dt, dy, k);
        for (int bi = 0; bi < nblocks; bi++) {   // one forward keeps every block's output
            ops_download_f32(o, z, m->a.blk[blocks[bi]].out, (size_t)k * T * H);
            for (int b = 0; b < k; b++) {
                float *f = feats[bi] + (size_t)(s + b) * H;
                for (int h = 0; h < H; h++) {
                    double acc = 0;
                    for (int i = 0; i < T; i++) acc += z[((size_t)b * T + i) * H + h];
                    f[h] = (float)(acc / T);
                }
            }
        }
    }
    float *dev[] = {dx, dnoise, dxt, dtarget, dt, dout};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) o->free(dev[i]);
    o->free(dy);
    objective_unbind(&obj);
    free(noise); free(tt); free(z);
}

float *probe_features_pixels(const Dataset *d) {
    size_t n = (size_t)d->n * d->c * d->h * d->w;
    float *f = xmalloc(n * sizeof(float));
    memcpy(f, d->images, n * sizeof(float));
    return f;
}

float *probe_features_pca(const Pca *p, const Dataset *d) {
    pca_check_images(p, d->c, d->h, d->w, "PCA features");
    long T = (long)(d->h / p->patch) * (d->w / p->patch);
    float *f = xmalloc((size_t)d->n * T * p->d * sizeof(float));
    int chunk = 1024;   // pca_encode handles any n; chunks keep its scratch small
    long per = (long)d->c * d->h * d->w;
    for (int s = 0; s < d->n; s += chunk) {
        int k = d->n - s < chunk ? d->n - s : chunk;
        pca_encode(p, d->images + (size_t)s * per, k, d->h, d->w, f + (size_t)s * T * p->d);
    }
    return f;
}

// ---------------------------------------------------------------- shared helpers

// Per-feature mean and biased variance of x [n, dim], in double.
static void moments(const float *x, int n, int dim, double *mean, double *var) {
    for (int j = 0; j < dim; j++) mean[j] = var[j] = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) mean[j] += x[(size_t)i * dim + j];
    for (int j = 0; j < dim; j++) mean[j] /= n > 0 ? n : 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) {
            double e = x[(size_t)i * dim + j] - mean[j];
            var[j] += e * e;
        }
    for (int j = 0; j < dim; j++) var[j] /= n > 0 ? n : 1;
}

static void check_labels(const int *y, int n, int classes, const char *what) {
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= classes) ddm_fatal("%s label %d of sample %d is outside 0..%d", what, y[i], i, classes - 1);
}

static void check_args(int ntr, int nte, int dim, int classes) {
    if (ntr < 1 || nte < 1) ddm_fatal("probe: needs at least one training and one test sample (got %d and %d)", ntr, nte);
    if (dim < 1) ddm_fatal("probe: feature dimension %d", dim);
    if (classes < 2) ddm_fatal("probe: needs at least 2 classes (got %d)", classes);
}

// ---------------------------------------------------------------- linear probe

void probe_opts_defaults(ProbeOpts *o) {
    o->epochs = 30;
    o->batch = 256;
    o->lr = 0.1f;
    o->momentum = 0.9f;
    o->weight_decay = 0;
    o->warmup_epochs = 1;
    o->seed = 0;
}

// logits [n, classes] = x [n, dim] W^T + b, W [classes, dim].
static void logits_of(float *logits, const float *x, int n, int dim, const float *W, const float *bias, int classes) {
    for (int i = 0; i < n; i++) memcpy(logits + (size_t)i * classes, bias, classes * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, classes, dim, 1.0f, x, dim, W, dim, 1.0f, logits, classes);
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int j = 1; j < n; j++) if (v[j] > v[best]) best = j;
    return best;
}

// Top-1 of the linear classifier on standardised x.
static float classify_accuracy(const float *x, const int *y, int n, int dim, const float *W, const float *bias,
                               int classes) {
    int chunk = 1024;
    float *lg = xmalloc((size_t)chunk * classes * sizeof(float));
    long correct = 0;
    for (int s = 0; s < n; s += chunk) {
        int k = n - s < chunk ? n - s : chunk;
        logits_of(lg, x + (size_t)s * dim, k, dim, W, bias, classes);
        for (int i = 0; i < k; i++) correct += argmax(lg + (size_t)i * classes, classes) == y[s + i];
    }
    free(lg);
    return (float)((double)correct / n);
}

// Optimiser: SGD with momentum 0.9 (PyTorch's form v = mu v + g, w -= lr v) rather than AdamW. It is what
// the published linear-probe protocols use (MAE: LARS, a layer-wise scaled SGD+momentum, which for a
// single layer is SGD with a rescaled lr; MoCo v3 / DINO: SGD+momentum), and with standardised inputs
// the softmax-regression problem is well conditioned, so SGD needs no per-coordinate scaling. It is
// also convex, so the result depends little on the choice.
// Initialisation: weights and bias start at zero (MAE draws N(0, 0.01)). Zero start makes a feature that
// is constant on the training set (standardised to exactly 0 there, so its gradient is always 0) keep a
// zero weight, so a test value in that feature, which standardisation can blow up by 1/sqrt(1e-6), never
// reaches the logits. The seed then only orders the minibatches.
float linear_probe(const float *ftr, const int *ytr, int ntr, const float *fte, const int *yte, int nte, int dim,
                   int classes, const ProbeOpts *o, ProbeStats *stats) {
    check_args(ntr, nte, dim, classes);
    check_labels(ytr, ntr, classes, "training");
    check_labels(yte, nte, classes, "test");
    if (o->epochs < 1 || o->batch < 1 || !(o->lr > 0)) ddm_fatal("linear probe: needs epochs >= 1, batch >= 1 and lr > 0");
    // BatchNorm without affine on frozen features = standardisation by the training statistics.
    double *mean = xmalloc((size_t)dim * sizeof(double)), *var = xmalloc((size_t)dim * sizeof(double));
    moments(ftr, ntr, dim, mean, var);
    float *xtr = xmalloc((size_t)ntr * dim * sizeof(float)), *xte = xmalloc((size_t)nte * dim * sizeof(float));
    float *inv = xmalloc((size_t)dim * sizeof(float));
    for (int j = 0; j < dim; j++) inv[j] = (float)(1.0 / sqrt(var[j] + 1e-6));
    for (long i = 0; i < (long)ntr; i++)
        for (int j = 0; j < dim; j++) xtr[i * dim + j] = (float)((ftr[i * dim + j] - mean[j]) * inv[j]);
    for (long i = 0; i < (long)nte; i++)
        for (int j = 0; j < dim; j++) xte[i * dim + j] = (float)((fte[i * dim + j] - mean[j]) * inv[j]);

    int B = o->batch < ntr ? o->batch : ntr;
    long spe = (ntr + B - 1) / B, total = spe * o->epochs;
    long warm = (long)llround(o->warmup_epochs * spe);
    if (warm > total / 2) warm = total / 2;
    if (warm < 0) warm = 0;
    size_t nw = (size_t)classes * dim;
    float *W = xcalloc(nw, sizeof(float)), *bias = xcalloc(classes, sizeof(float));
    float *vW = xcalloc(nw, sizeof(float)), *vb = xcalloc(classes, sizeof(float));
    float *gW = xmalloc(nw * sizeof(float)), *gb = xmalloc(classes * sizeof(float));
    float *xb = xmalloc((size_t)B * dim * sizeof(float)), *lg = xmalloc((size_t)B * classes * sizeof(float));
    int *perm = xmalloc((size_t)ntr * sizeof(int)), *yb = xmalloc((size_t)B * sizeof(int));
    double epoch_loss = 0;
    long step = 0;
    for (int e = 0; e < o->epochs; e++) {
        Rng r;
        rng_init(&r, o->seed, (uint64_t)e);
        rng_permutation(&r, perm, ntr);
        epoch_loss = 0;
        for (long s = 0; s < spe; s++, step++) {
            int start = (int)(s * B), k = ntr - start < B ? ntr - start : B;
            for (int b = 0; b < k; b++) {
                memcpy(xb + (size_t)b * dim, xtr + (size_t)perm[start + b] * dim, dim * sizeof(float));
                yb[b] = ytr[perm[start + b]];
            }
            logits_of(lg, xb, k, dim, W, bias, classes);
            // softmax cross-entropy; lg becomes dLoss/dlogits = (p - onehot) / k
            double loss = 0;
            for (int b = 0; b < k; b++) {
                float *l = lg + (size_t)b * classes;
                float mx = l[argmax(l, classes)];
                double z = 0;
                for (int j = 0; j < classes; j++) z += exp((double)l[j] - mx);
                loss += log(z) - ((double)l[yb[b]] - mx);
                for (int j = 0; j < classes; j++) l[j] = (float)((exp((double)l[j] - mx) / z - (j == yb[b])) / k);
            }
            epoch_loss += loss / k;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, classes, dim, k, 1.0f, lg, classes, xb, dim, 0.0f, gW, dim);
            for (int j = 0; j < classes; j++) {
                double acc = 0;
                for (int b = 0; b < k; b++) acc += lg[(size_t)b * classes + j];
                gb[j] = (float)acc;
            }
            double lr = step < warm ? o->lr * (double)(step + 1) / warm
                                    : 0.5 * o->lr * (1 + cos(M_PI * (double)(step - warm) / (double)(total - warm)));
            float mu = o->momentum, wd = o->weight_decay;
            for (size_t i = 0; i < nw; i++) {
                vW[i] = mu * vW[i] + gW[i] + wd * W[i];
                W[i] -= (float)lr * vW[i];
            }
            for (int j = 0; j < classes; j++) {
                vb[j] = mu * vb[j] + gb[j];
                bias[j] -= (float)lr * vb[j];
            }
        }
    }
    float acc = classify_accuracy(xte, yte, nte, dim, W, bias, classes);
    if (stats) {
        stats->train_loss = (float)(epoch_loss / spe);
        stats->train_acc = classify_accuracy(xtr, ytr, ntr, dim, W, bias, classes);
    }
    free(mean); free(var); free(xtr); free(xte); free(inv);
    free(W); free(bias); free(vW); free(vb); free(gW); free(gb); free(xb); free(lg); free(perm); free(yb);
    return acc;
}

int probe_val_count(int ntr, float val_frac) {
    long nval = lround((double)val_frac * ntr);
    return nval >= 1 && nval < ntr ? (int)nval : -1;
}

float linear_probe_tuned(const float *ftr, const int *ytr, int ntr, const float *fte, const int *yte, int nte,
                         int dim, int classes, const ProbeOpts *o, const float *wds, int nwd, float val_frac,
                         float *val_acc, float *best_wd, ProbeStats *stats) {
    int nval = probe_val_count(ntr, val_frac), nfit = ntr - nval;
    if (nwd < 1 || nval < 0)
        ddm_fatal("linear probe: a weight-decay search needs at least one value and a validation fraction that "
                  "leaves both parts non-empty (%d training images, fraction %g)", ntr, val_frac);
    int best = 0;
    for (int i = 0; i < nwd; i++) {
        ProbeOpts oi = *o;
        oi.weight_decay = wds[i];
        // the held-out rows stand in for the test set
        val_acc[i] = linear_probe(ftr, ytr, nfit, ftr + (size_t)nfit * dim, ytr + nfit, nval, dim, classes, &oi, NULL);
        if (val_acc[i] > val_acc[best]) best = i;
    }
    ProbeOpts ob = *o;
    ob.weight_decay = *best_wd = wds[best];
    return linear_probe(ftr, ytr, ntr, fte, yte, nte, dim, classes, &ob, stats);
}

// ---------------------------------------------------------------- k-NN

// x [n, dim] -> (x - mean) / max(||x - mean||, 1e-12), into out.
static void center_normalise(float *out, const float *x, int n, int dim, const double *mean) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        double ss = 0;
        for (int j = 0; j < dim; j++) {
            double v = x[i * dim + j] - mean[j];
            ss += v * v;
        }
        double s = 1.0 / fmax(sqrt(ss), 1e-12);
        for (int j = 0; j < dim; j++) out[i * dim + j] = (float)((x[i * dim + j] - mean[j]) * s);
    }
}

// Centring (our addition to DINO's protocol): pooled transformer features share a large common
// component (positions, biases) that would make every cosine close to 1; subtracting the training mean
// removes it. Unlike full standardisation it does not blow up features that are nearly constant on
// the training set.
float knn_accuracy(const float *ftr, const int *ytr, int ntr, const float *fte, const int *yte, int nte, int dim,
                   int classes, int k, float temperature) {
    check_args(ntr, nte, dim, classes);
    check_labels(ytr, ntr, classes, "training");
    check_labels(yte, nte, classes, "test");
    if (k < 1 || !(temperature > 0)) ddm_fatal("k-NN: needs k >= 1 and temperature > 0");
    if (k > ntr) k = ntr;
    double *mean = xmalloc((size_t)dim * sizeof(double)), *var = xmalloc((size_t)dim * sizeof(double));
    moments(ftr, ntr, dim, mean, var);
    float *ntrf = xmalloc((size_t)ntr * dim * sizeof(float)), *ntef = xmalloc((size_t)nte * dim * sizeof(float));
    center_normalise(ntrf, ftr, ntr, dim, mean);
    center_normalise(ntef, fte, nte, dim, mean);
    int rows = 256;
    float *sim = xmalloc((size_t)rows * ntr * sizeof(float));
    long correct = 0;
    for (int s = 0; s < nte; s += rows) {
        int m = nte - s < rows ? nte - s : rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, ntr, dim, 1.0f, ntef + (size_t)s * dim, dim, ntrf, dim,
                    0.0f, sim, ntr);
        #pragma omp parallel reduction(+ : correct)
        {
            float *top = xmalloc((size_t)k * sizeof(float));
            int *idx = xmalloc((size_t)k * sizeof(int));
            double *votes = xmalloc((size_t)classes * sizeof(double));
            #pragma omp for schedule(static)
            for (int i = 0; i < m; i++) {
                const float *srow = sim + (size_t)i * ntr;
                int cnt = 0;
                // sorted descending; a later equal similarity goes after the earlier ones (lower index wins)
                for (int j = 0; j < ntr; j++) {
                    float v = srow[j];
                    if (cnt == k && !(v > top[k - 1])) continue;
                    int pos = cnt < k ? cnt++ : k - 1;
                    while (pos > 0 && v > top[pos - 1]) { top[pos] = top[pos - 1]; idx[pos] = idx[pos - 1]; pos--; }
                    top[pos] = v;
                    idx[pos] = j;
                }
                for (int c = 0; c < classes; c++) votes[c] = 0;
                // exp((sim - max) / T): the common factor exp(-max / T) changes no argmax and avoids overflow
                for (int q = 0; q < cnt; q++) votes[ytr[idx[q]]] += exp(((double)top[q] - top[0]) / temperature);
                int best = 0;
                for (int c = 1; c < classes; c++) if (votes[c] > votes[best]) best = c;
                correct += best == yte[s + i];
            }
            free(top); free(idx); free(votes);
        }
    }
    free(mean); free(var); free(ntrf); free(ntef); free(sim);
    return (float)((double)correct / nte);
}
