// ddm probe's library: feature extraction (pooled block outputs at a fixed noise level, baselines) and
// the linear / k-NN probes on synthetic features.
#include <string.h>
#include "test.h"
#include "common.h"
#include "eval/probe.h"
#include "loss/objective.h"
#include "rng.h"

// n samples of `classes` Gaussian blobs in dim dimensions: class c has mean sep * e_c, unit noise.
static void blobs(float *x, int *y, int n, int dim, int classes, float sep, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 0);
    for (int i = 0; i < n; i++) {
        y[i] = rng_int(&r, classes);
        for (int j = 0; j < dim; j++) x[(size_t)i * dim + j] = rng_normal(&r) + (j == y[i] ? sep : 0);
    }
}

static void test_separable(void) {
    int dim = 32, classes = 10, ntr = 3000, nte = 1000;
    float *xtr = xmalloc(sizeof(float) * ntr * dim), *xte = xmalloc(sizeof(float) * nte * dim);
    int *ytr = xmalloc(sizeof(int) * ntr), *yte = xmalloc(sizeof(int) * nte);
    blobs(xtr, ytr, ntr, dim, classes, 10, 1);
    blobs(xte, yte, nte, dim, classes, 10, 2);
    ProbeOpts o;
    probe_opts_defaults(&o);
    o.epochs = 10;
    ProbeStats st;
    float lin = linear_probe(xtr, ytr, ntr, xte, yte, nte, dim, classes, &o, &st);
    CHECK(lin >= 0.99f, "linear probe on separable blobs: %.4f", lin);
    CHECK(st.train_acc >= 0.99f && isfinite(st.train_loss) && st.train_loss < 0.1f, "train acc %.4f loss %g",
          st.train_acc, st.train_loss);
    float knn = knn_accuracy(xtr, ytr, ntr, xte, yte, nte, dim, classes, 20, 0.07f);
    CHECK(knn >= 0.99f, "k-NN on separable blobs: %.4f", knn);
    // k larger than the training set is capped; k = 1 works too
    float knn1 = knn_accuracy(xtr, ytr, 50, xte, yte, nte, dim, classes, 100, 0.07f);
    CHECK(knn1 > 0.3f && knn1 <= 1, "k-NN with k > ntr: %.4f", knn1);
    CHECK(knn_accuracy(xtr, ytr, ntr, xte, yte, nte, dim, classes, 1, 0.07f) >= 0.98f, "1-NN");

    // determinism: same seed, same result; the seed changes the minibatch order
    ProbeStats st2, st3;
    float lin2 = linear_probe(xtr, ytr, ntr, xte, yte, nte, dim, classes, &o, &st2);
    CHECK(lin2 == lin && st2.train_loss == st.train_loss && st2.train_acc == st.train_acc,
          "same seed, same result (%g %g vs %g %g)", lin, st.train_loss, lin2, st2.train_loss);
    o.seed = 5;
    linear_probe(xtr, ytr, ntr, xte, yte, nte, dim, classes, &o, &st3);
    CHECK(st3.train_loss != st.train_loss, "another seed changes the minibatch order (loss %g vs %g)",
          st3.train_loss, st.train_loss);
    CHECK(knn_accuracy(xtr, ytr, ntr, xte, yte, nte, dim, classes, 20, 0.07f) == knn, "k-NN is deterministic");

    // a feature constant on the training set (standardised to 0 there) and different at test time:
    // no NaN, and it cannot hurt (its weight stays 0)
    int d2 = dim + 2;
    float *ctr = xmalloc(sizeof(float) * ntr * d2), *cte = xmalloc(sizeof(float) * nte * d2);
    for (int i = 0; i < ntr; i++) {
        memcpy(ctr + (size_t)i * d2, xtr + (size_t)i * dim, sizeof(float) * dim);
        ctr[(size_t)i * d2 + dim] = 3.0f;
        ctr[(size_t)i * d2 + dim + 1] = 0.0f;
    }
    for (int i = 0; i < nte; i++) {
        memcpy(cte + (size_t)i * d2, xte + (size_t)i * dim, sizeof(float) * dim);
        cte[(size_t)i * d2 + dim] = i % 2 ? 3.0f : -50.0f;
        cte[(size_t)i * d2 + dim + 1] = 0.0f;
    }
    o.seed = 0;
    ProbeStats sc;
    float linc = linear_probe(ctr, ytr, ntr, cte, yte, nte, d2, classes, &o, &sc);
    CHECK(isfinite(sc.train_loss) && linc >= 0.99f, "constant features: acc %.4f, loss %g", linc, sc.train_loss);
    float knnc = knn_accuracy(ctr, ytr, ntr, cte, yte, nte, d2, classes, 20, 0.07f);
    CHECK(knnc >= 0.99f, "constant features, k-NN: %.4f", knnc);
    free(ctr); free(cte);

    // random labels: chance (10 classes: 0.1 +- ~0.01 on 1000 test samples)
    Rng r;
    rng_init(&r, 9, 0);
    for (int i = 0; i < ntr; i++) ytr[i] = rng_int(&r, classes);
    for (int i = 0; i < nte; i++) yte[i] = rng_int(&r, classes);
    float linr = linear_probe(xtr, ytr, ntr, xte, yte, nte, dim, classes, &o, NULL);
    float knnr = knn_accuracy(xtr, ytr, ntr, xte, yte, nte, dim, classes, 20, 0.07f);
    CHECK(linr > 0.05f && linr < 0.16f, "linear probe on random labels: %.4f (chance 0.1)", linr);
    CHECK(knnr > 0.05f && knnr < 0.16f, "k-NN on random labels: %.4f (chance 0.1)", knnr);
    free(xtr); free(xte); free(ytr); free(yte);
}

// A tiny class-conditional network with every parameter perturbed (a fresh dit_init has zero adaLN
// gates, which would make every block the identity).
static Dit *tiny_dit(int num_classes) {
    DitConfig c = {2, 32, 2, 4, 1, 8, 8, num_classes, 0, 4};
    Dit *m = dit_create(&c, &ops_cpu);
    dit_init(m, 3);
    float *h = xmalloc(m->total * sizeof(float));
    ops_download_f32(m->ops, h, m->params, m->total);
    Rng r;
    rng_init(&r, 4, 0);
    for (size_t i = 0; i < m->total; i++) h[i] += 0.1f * rng_normal(&r);
    ops_upload_f32(m->ops, m->params, h, m->total);
    free(h);
    return m;
}

// The pooled block output computed by hand: the same per-sample noise, one forward of every sample.
static void features_by_hand(Dit *m, const char *objective, const Dataset *d, int block, float t, uint64_t seed,
                             float *feat) {
    const DitConfig *c = &m->cfg;
    int n = d->n, T = dit_num_tokens(c), H = c->hidden;
    long per = (long)d->c * d->h * d->w;
    Objective obj;
    objective_init(&obj, (ObjectiveKind)objective_parse(objective));
    float *noise = xmalloc(sizeof(float) * n * per), *xt = xmalloc(sizeof(float) * n * per);
    float *tgt = xmalloc(sizeof(float) * n * per), *tt = xmalloc(sizeof(float) * n);
    float *out = xmalloc(sizeof(float) * n * dit_out_channels(c) * c->height * c->width);
    int *y = xmalloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        Rng r;
        rng_init(&r, seed, (uint64_t)i);
        rng_normal_fill(&r, noise + (size_t)i * per, per);
        tt[i] = t;
        y[i] = c->num_classes;
    }
    objective_make_pair(&obj, xt, tgt, d->images, noise, tt, n, per);
    dit_forward(m, out, xt, tt, c->num_classes ? y : NULL, n);
    const float *z = m->a.blk[block].out;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < H; h++) {
            double s = 0;
            for (int k = 0; k < T; k++) s += z[((size_t)i * T + k) * H + h];
            feat[(size_t)i * H + h] = (float)(s / T);
        }
    free(noise); free(xt); free(tgt); free(tt); free(out); free(y);
}

// The weight-decay search: its validation accuracies are those of plain probes on the split, it picks
// their best, and its test result is the plain probe on all training rows with that weight decay.
static void test_tuned(void) {
    int dim = 40, classes = 3, ntr = 400, nte = 300;
    float *xtr = xmalloc(sizeof(float) * ntr * dim), *xte = xmalloc(sizeof(float) * nte * dim);
    int *ytr = xmalloc(sizeof(int) * ntr), *yte = xmalloc(sizeof(int) * nte);
    blobs(xtr, ytr, ntr, dim, classes, 1.0f, 3);   // overlapping classes: the weight decay matters
    blobs(xte, yte, nte, dim, classes, 1.0f, 4);
    ProbeOpts o;
    probe_opts_defaults(&o);
    o.epochs = 5;
    float wds[3] = {0, 0.3f, 3.0f}, val[3], best;
    ProbeStats st, st_plain;
    float lin = linear_probe_tuned(xtr, ytr, ntr, xte, yte, nte, dim, classes, &o, wds, 3, 0.25f, val, &best, &st);
    int nfit = 300, argbest = 0;
    for (int i = 0; i < 3; i++) {
        ProbeOpts oi = o;
        oi.weight_decay = wds[i];
        float v = linear_probe(xtr, ytr, nfit, xtr + (size_t)nfit * dim, ytr + nfit, ntr - nfit, dim, classes, &oi, NULL);
        CHECK(v == val[i], "validation accuracy %d: %g vs plain probe on the split %g", i, val[i], v);
        if (val[i] > val[argbest]) argbest = i;
    }
    CHECK(best == wds[argbest], "chose wd %g, the best on validation is %g", best, wds[argbest]);
    CHECK(val[0] != val[2], "the grid's ends differ on validation (%g vs %g): the search is not vacuous", val[0], val[2]);
    o.weight_decay = best;
    float plain = linear_probe(xtr, ytr, ntr, xte, yte, nte, dim, classes, &o, &st_plain);
    CHECK(plain == lin && st_plain.train_loss == st.train_loss, "retrained on all rows: %g vs %g", lin, plain);
    free(xtr); free(xte); free(ytr); free(yte);
}

static void test_features(void) {
    Dataset d = {5, 1, 8, 8, NULL, NULL, 3};
    d.images = xmalloc(sizeof(float) * 5 * 64);
    d.labels = xmalloc(sizeof(int) * 5);
    Rng r;
    rng_init(&r, 11, 0);
    for (int i = 0; i < 5 * 64; i++) d.images[i] = 2 * rng_uniform(&r) - 1;
    for (int i = 0; i < 5; i++) d.labels[i] = i % 3;
    for (int cond = 0; cond < 2; cond++) {
        Dit *m = tiny_dit(cond ? 3 : 0);
        const char *objs[2] = {"sit_linear", "ddpm"};
        for (int oi = 0; oi < 2; oi++) {
            float t = probe_default_t(objs[oi]);
            for (int block = 0; block < 2; block++) {
                float *f = probe_features(m, objs[oi], NULL, &d, block, t, 2, 7);   // batches 2, 2, 1
                float *g = probe_features(m, objs[oi], NULL, &d, block, t, 256, 7);
                float want[5 * 32];
                features_by_hand(m, objs[oi], &d, block, t, 7, want);
                char what[96];
                snprintf(what, sizeof what, "features %s block %d cond %d", objs[oi], block, cond);
                CHECK(close_enough(f, want, 5 * 32, 1e-5, 1e-4, what), "%s = pooled dit_forward block output", what);
                // the same noise whatever the batching; GEMM rounding may differ with the batch size
                CHECK(close_enough(f, g, 5 * 32, 1e-6, 1e-5, what), "%s: independent of the batch size", what);
                free(f);
                free(g);
            }
        }
        // block 0 and block 1 differ; another noise seed changes the features a little
        float *f0 = probe_features(m, "sit_linear", NULL, &d, 0, 0.99f, 4, 7), *f1 = probe_features(m, "sit_linear", NULL, &d, 1, 0.99f, 4, 7);
        float *f2 = probe_features(m, "sit_linear", NULL, &d, 1, 0.99f, 4, 8);
        CHECK(memcmp(f0, f1, sizeof(float) * 5 * 32) != 0, "blocks differ");
        CHECK(memcmp(f1, f2, sizeof(float) * 5 * 32) != 0, "the noise seed matters");
        free(f0); free(f1); free(f2);
        dit_free(m);
    }
    CHECK(probe_default_t("ddpm") == 10 && probe_default_t("sit_linear") == 0.99f && probe_default_t("sit_gvp") == 0.99f,
          "default t");
    CHECK(probe_t_error("ddpm", 10.5f) && probe_t_error("ddpm", 1000) && !probe_t_error("ddpm", 999), "ddpm t range");
    CHECK(probe_t_error("sit_linear", 1.5f) && !probe_t_error("sit_linear", 1) && !probe_t_error("sit_gvp", 0), "SiT t range");
    CHECK(probe_default_t("ldae") == 10 && probe_t_error("ldae", 1000) && probe_t_error("ldae", -1) &&
              !probe_t_error("ldae", 0) && !probe_t_error("ldae", 999) && !probe_t_error("ldae", 10.5f),
          "ldae: default t = 10 of 1000, t in 0..999");

    // baselines: pixels are a copy; PCA is pca_encode flattened
    float *px = probe_features_pixels(&d);
    CHECK(!memcmp(px, d.images, sizeof(float) * 5 * 64), "pixel features = the images");
    Pca *p = pca_fit(d.images, 5, 1, 8, 8, 4, 3, 200, 1, 0, 1);
    float *pf = probe_features_pca(p, &d), want[5 * 4 * 3];
    pca_encode(p, d.images, 5, 8, 8, want);
    CHECK(!memcmp(pf, want, sizeof want), "PCA features = pca_encode [n, T*d]");
    pca_free(p);
    free(px);
    free(pf);
    dataset_free(&d);
}

int main(void) {
    test_separable();
    test_features();
    test_tuned();
    TEST_MAIN_END();
}
