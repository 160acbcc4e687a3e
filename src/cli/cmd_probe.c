// ddm probe: how good are a network's features (l-DAE, SPEC §1.2). Block outputs of a checkpoint (or a
// baseline: raw pixels, PCA coefficients, a randomly initialised network), global-average-pooled, for
// the clean image at a small fixed noise level; then a linear probe (MAE protocol) and a weighted k-NN,
// top-1 on the test split of the data (any format of data.h; Fashion-MNIST by default).
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "cli/cli_data.h"
#include "common.h"
#include "data/dataset.h"
#include "eval/probe.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model_load.h"

// A PCA tokenizer is a safetensors file too: recognise it from its header (metadata format
// "ddm-pca-1"), so the error says what the file is. Anything unreadable is left to model_load.
static int is_pca_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char len8[8];
    int found = 0;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        if (n > 0 && n < (64u << 20)) {
            char *h = xmalloc(n + 1);
            if (fread(h, 1, n, f) == n) {
                h[n] = 0;
                found = strstr(h, "\"ddm-pca-1\"") != NULL && strstr(h, "\"config\"") == NULL;
            }
            free(h);
        }
    }
    fclose(f);
    return found;
}

// The first n images of a split (a seeded subset of a class-grouped ImageFolder), with their labels.
static Dataset take_first(DataSource *src, int n, uint64_t seed, const char *flag) {
    if (!src->labels) ddm_fatal("%s: the %s split has no labels: the probes need them", src->path, src->split);
    Dataset d = data_materialize(src, n, seed, flag);
    data_close(src);
    return d;
}

// "last", "encoder" (the last encoder block: encoder_depth - 1) or a 0-based index of an existing block;
// "all" gives -1 (every block: cmd_probe lists 0..depth-1).
static int resolve_block(const Dit *m, const char *s, int encoder_depth) {
    int depth = m->cfg.depth;
    if (!strcmp(s, "all")) return -1;
    if (!strcmp(s, "last")) return depth - 1;
    if (!strcmp(s, "encoder")) return encoder_depth - 1;
    char *end;
    long b = strtol(s, &end, 10);
    if (end == s || *end) ddm_fatal("--block '%s': expected a block index, 'encoder', 'last' or 'all'", s);
    if (b < 0 || b >= depth) ddm_fatal("--block %s: the model has blocks 0 to %d", s, depth - 1);
    return (int)b;
}

// --wd: one weight decay, or the list a validation search chooses from.
enum { WD_GRID_MAX = 16 };
typedef struct { float wd[WD_GRID_MAX]; int n; float val_frac; } WdGrid;

static WdGrid parse_wd_grid(const char *s, float val_frac) {
    WdGrid g = {.n = 0, .val_frac = val_frac};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *end;
        double v = strtod(tok, &end);
        if (end == tok || *end || !(v >= 0 && v <= 1e6))
            ddm_fatal("--wd '%s': expected a weight decay >= 0 or a comma-separated list of them", s);
        if (g.n == WD_GRID_MAX) ddm_fatal("--wd '%s': at most %d values", s, WD_GRID_MAX);
        g.wd[g.n++] = (float)v;
    }
    if (g.n == 0) ddm_fatal("--wd '%s': expected a weight decay >= 0 or a comma-separated list of them", s);
    return g;
}

typedef struct {
    float linear, knn;     // top-1 on the test set, fractions
    float wd;              // the linear probe's weight decay (the chosen one after a search)
    float val_acc[WD_GRID_MAX];   // a search's validation accuracies, per grid value
    ProbeStats stats;      // the linear probe's training loss and accuracy
    double t_linear, t_knn;
} ProbeResult;

// The linear probe and the k-NN on one feature set, each printed on its own line as it finishes.
static ProbeResult run_probes(const float *ftr, const float *fte, const Dataset *tr, const Dataset *te, int dim,
                              int classes, const ProbeOpts *po, const WdGrid *g, int knn_k, float knn_temp) {
    ProbeResult r;
    double t1 = now_seconds();
    r.wd = g->wd[0];
    if (g->n > 1) {
        r.linear = linear_probe_tuned(ftr, tr->labels, tr->n, fte, te->labels, te->n, dim, classes, po, g->wd, g->n,
                                      g->val_frac, r.val_acc, &r.wd, &r.stats);
        printf("weight decay by validation (last %g of the training images):", g->val_frac);
        for (int i = 0; i < g->n; i++) printf(" %g %.2f%%%s", g->wd[i], 100 * r.val_acc[i], i + 1 < g->n ? "," : "");
        printf("; chose %g\n", r.wd);
    } else {
        ProbeOpts o = *po;
        o.weight_decay = r.wd;
        r.linear = linear_probe(ftr, tr->labels, tr->n, fte, te->labels, te->n, dim, classes, &o, &r.stats);
    }
    r.t_linear = now_seconds() - t1;
    printf("linear probe top-1: %.2f%%  (train %.2f%%, last-epoch loss %.4f; %d epochs, lr %g, wd %g, batch %d; %.2f s)\n",
           100 * r.linear, 100 * r.stats.train_acc, r.stats.train_loss, po->epochs, po->lr, r.wd, po->batch, r.t_linear);
    fflush(stdout);
    double t2 = now_seconds();
    r.knn = knn_accuracy(ftr, tr->labels, tr->n, fte, te->labels, te->n, dim, classes, knn_k, knn_temp);
    r.t_knn = now_seconds() - t2;
    printf("k-NN top-1: %.2f%%  (k = %d, weights exp(cos / %g); %.2f s)\n", 100 * r.knn, knn_k, knn_temp, r.t_knn);
    fflush(stdout);
    return r;
}

static void add_result(cJSON *o, const ProbeResult *r, const WdGrid *g) {
    cJSON_AddNumberToObject(o, "linear_top1", 100.0 * r->linear);
    cJSON_AddNumberToObject(o, "wd", r->wd);
    if (g->n > 1) {
        cJSON *v = cJSON_AddArrayToObject(o, "val_top1");
        for (int i = 0; i < g->n; i++) cJSON_AddItemToArray(v, cJSON_CreateNumber(100.0 * r->val_acc[i]));
    }
    cJSON_AddNumberToObject(o, "linear_train_top1", 100.0 * r->stats.train_acc);
    cJSON_AddNumberToObject(o, "linear_train_loss", r->stats.train_loss);
    cJSON_AddNumberToObject(o, "knn_top1", 100.0 * r->knn);
    cJSON_AddNumberToObject(o, "seconds_linear", r->t_linear);
    cJSON_AddNumberToObject(o, "seconds_knn", r->t_knn);
}

// --save-features: every feature set and both label vectors in one safetensors file (atomic).
static void save_features(const char *path, float **ftr, float **fte, const int *blocks, int nb, int dim,
                          const Dataset *tr, const Dataset *te, const char *source) {
    StWriter *w = st_writer_new();
    char name[64];
    for (int i = 0; i < nb; i++) {
        int64_t shape_tr[2] = {tr->n, dim}, shape_te[2] = {te->n, dim};
        snprintf(name, sizeof name, "train_%d", blocks[i]);
        st_writer_add(w, name, ST_F32, 2, shape_tr, ftr[i]);
        snprintf(name, sizeof name, "test_%d", blocks[i]);
        st_writer_add(w, name, ST_F32, 2, shape_te, fte[i]);
    }
    int64_t ntr = tr->n, nte = te->n;
    st_writer_add(w, "train_labels", ST_I32, 1, &ntr, tr->labels);
    st_writer_add(w, "test_labels", ST_I32, 1, &nte, te->labels);
    st_writer_meta(w, "source", source);
    st_writer_write(w, path);
    st_writer_free(w);
    printf("wrote %s\n", path);
}

int cmd_probe(int argc, char **argv) {
    char ckpt[512] = "", block_s[16] = "last", baseline[16] = "none", pca_path[512] = "", test_data[DATA_PATH_MAX] = "";
    DataSpec spec;
    data_spec_defaults(&spec);
    char json[512] = "", features_out[512] = "", objective[16] = "sit_linear";
    int ema = 0, n_train = 0, n_test = 0, feature_batch = 256, knn_k = 20, threads = 0;
    int depth = 6, hidden = 192, heads = 3, patch = 4;
    float t = -1, knn_temp = 0.07f, val_frac = 0.1f;
    char wd_s[256] = "0", precision[8] = "fp32", device[16] = "";
    ProbeOpts po;
    probe_opts_defaults(&po);
    ArgSpec specs[] = {
        {"ckpt", ARG_STR, ckpt, sizeof ckpt, 0, 0, "checkpoint of ddm train (.safetensors)", 0, NULL},
        {"block", ARG_STR, block_s, sizeof block_s, 0, 0, "block whose output is the feature: 0-based index, 'last', 'encoder' (block encoder-depth - 1 of the checkpoint's config; depth/2 - 1 by default) or 'all' (every block from one forward pass, one result per block)", 0, NULL},
        {"t", ARG_FLOAT, &t, 0, -1, 1000, "input noise level (-1 = by objective: ddpm and ldae 10 of 1000, SiT 0.99 with data at t = 1)", 0, NULL},
        {"ema", ARG_BOOL, &ema, 0, 0, 1, "use the EMA weights", 0, NULL},
        {"baseline", ARG_STR, baseline, sizeof baseline, 0, 0, "none (the checkpoint), pixels, pca (--pca) or random (dit_init with --seed)", 0, NULL},
        {"pca", ARG_STR, pca_path, sizeof pca_path, 0, 0, "PCA tokenizer of ddm pca, for --baseline pca", 0, NULL},
        {"depth", ARG_INT, &depth, 0, 1, 1024, "--baseline random without --ckpt: depth", 0, NULL},
        {"hidden", ARG_INT, &hidden, 0, 4, 65536, "--baseline random without --ckpt: hidden size", 0, NULL},
        {"heads", ARG_INT, &heads, 0, 1, 1024, "--baseline random without --ckpt: attention heads", 0, NULL},
        {"patch", ARG_INT, &patch, 0, 1, 1024, "--baseline random without --ckpt: patch size", 0, NULL},
        {"objective", ARG_STR, objective, sizeof objective, 0, 0, "--baseline random without --ckpt: time convention (sit_linear, sit_gvp, ddpm)", 0, NULL},
        CLI_DATA_FLAGS(spec),
        CLI_TEST_DATA_FLAG(test_data),
        {"n-train", ARG_INT, &n_train, 0, 0, 1 << 30, "training images for the probes, the first N of the train split (a seeded "
         "subset of an ImageFolder, whose files are grouped by class; 0 = all)", 0, NULL},
        {"n-test", ARG_INT, &n_test, 0, 0, 1 << 30, "test images, the first N of the test split (likewise; 0 = all)", 0, NULL},
        {"epochs", ARG_INT, &po.epochs, 0, 1, 100000, "linear probe: epochs", 0, NULL},
        {"lr", ARG_FLOAT, &po.lr, 0, 1e-12, 1e6, "linear probe: peak learning rate (SGD, momentum 0.9, cosine after the warmup)", 0, NULL},
        {"warmup", ARG_FLOAT, &po.warmup_epochs, 0, 0, 100000, "linear probe: warmup epochs (at most half the run)", 0, NULL},
        {"wd", ARG_STR, wd_s, sizeof wd_s, 0, 0, "linear probe: weight decay, or a comma-separated list to choose from by accuracy on the last --val-frac of the training images (then retrained on all of them)", 0, NULL},
        {"val-frac", ARG_FLOAT, &val_frac, 0, 1e-6, 0.999999, "linear probe: held-out fraction of the training images for choosing among several --wd", 0, NULL},
        {"batch", ARG_INT, &po.batch, 0, 1, 1 << 24, "linear probe: minibatch size", 0, NULL},
        {"feature-batch", ARG_INT, &feature_batch, 0, 1, 1 << 20, "images per forward pass when extracting features", 0, NULL},
        {"seed", ARG_U64, &po.seed, 0, 0, 1.8e19, "seed of the input noise, the minibatch order and --baseline random", 0, NULL},
        {"knn-k", ARG_INT, &knn_k, 0, 1, 1 << 20, "k-NN: neighbours", 0, NULL},
        {"knn-t", ARG_FLOAT, &knn_temp, 0, 1e-6, 1e6, "k-NN: vote weight exp(cosine / T)", 0, NULL},
        {"json", ARG_STR, json, sizeof json, 0, 0, "also write the results as JSON (atomically)", 0, NULL},
        {"save-features", ARG_STR, features_out, sizeof features_out, 0, 0, "also write the features and labels as safetensors (train_<block>, test_<block>, train_labels, test_labels; block -1 for a baseline), e.g. to try other probes without a forward pass", 0, NULL},
        {"precision", ARG_STR, precision, sizeof precision, 0, 0, CLI_PRECISION_HELP " for the feature extraction (not the checkpoint's: fp32 unless given)", 0, NULL},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0, NULL},
        CLI_DEVICE_FLAG(device),
    };
    ArgParser ap = {"probe", "Linear-probe and k-NN accuracy of a network's pooled block features (or a baseline) on a labelled dataset.",
                    specs, sizeof specs / sizeof specs[0]};
    args_parse(&ap, argc, argv);
    cli_data_from_checkpoint(&spec, &ap, ckpt, "probe");
    WdGrid grid = parse_wd_grid(wd_s, val_frac);
    cli_set_threads(threads);
    const Ops *ops = cli_ops(device, precision);   // a bad device, name or a CPU without AVX512_BF16 fails before any work

    enum { B_NONE, B_PIXELS, B_PCA, B_RANDOM } base;
    if (!strcmp(baseline, "none")) base = B_NONE;
    else if (!strcmp(baseline, "pixels")) base = B_PIXELS;
    else if (!strcmp(baseline, "pca")) base = B_PCA;
    else if (!strcmp(baseline, "random")) base = B_RANDOM;
    else ddm_fatal("--baseline '%s': expected none, pixels, pca or random", baseline);
    if (base == B_NONE && !ckpt[0]) ddm_fatal("ddm probe needs --ckpt (or --baseline pixels, pca or random)");
    if (base == B_PCA && !pca_path[0]) ddm_fatal("--baseline pca needs --pca FILE (a tokenizer written by ddm pca)");
    if (base != B_PCA && pca_path[0]) ddm_fatal("--pca is only used with --baseline pca");
    if ((base == B_PIXELS || base == B_PCA) && ckpt[0]) ddm_fatal("--baseline %s uses no network: drop --ckpt", baseline);
    if ((base == B_PIXELS || base == B_PCA) && strcmp(precision, "fp32"))
        ddm_fatal("--precision %s: --baseline %s uses no network", precision, baseline);
    if (ckpt[0] && is_pca_file(ckpt))
        ddm_fatal("%s is a PCA tokenizer (from ddm pca), not a ddm model checkpoint; pass it with --baseline pca --pca", ckpt);
    if (base == B_RANDOM && !ckpt[0] && (objective_parse(objective) < 0 || objective_parse(objective) == OBJ_DENOISE))
        ddm_fatal("--objective '%s': expected sit_linear, sit_gvp or ddpm", objective);
    if (base == B_RANDOM && !ckpt[0] && objective_parse(objective) == OBJ_LDAE)
        ddm_fatal("--baseline random --objective ldae needs --ckpt (an l-DAE checkpoint holds the PCA tokenizer)");

    double t0 = now_seconds();
    // the model and the tokenizer first: a bad file fails before the data are read
    Dit *m = NULL;
    Pca *pca = NULL, *model_pca = NULL;   // the --baseline pca tokenizer; an l-DAE checkpoint's own
    Objective obj;                        // a checkpoint's objective, as trained
    int block = -1;
    char source[700];
    if (ckpt[0]) {
        TrainConfig cfg;
        m = model_load(ckpt, base == B_RANDOM ? 0 : ema, ops, &cfg);
        snprintf(objective, sizeof objective, "%s", cfg.objective);
        block = resolve_block(m, block_s, train_encoder_depth(&cfg));
        train_objective_setup(&cfg, &obj);
        if (objective_uses_pca(&obj)) {   // the tokenizer embedded in the checkpoint, else its path
            StFile *f = checkpoint_open(ckpt);
            model_pca = checkpoint_pca(f);
            st_free(f);
            if (!model_pca && !cfg.pca[0]) ddm_fatal("%s: an l-DAE checkpoint without its PCA tokenizer", ckpt);
            if (!model_pca) model_pca = pca_load(cfg.pca);
        }
        if (!args_seen(&ap, "t")) t = probe_default_t(objective);
        const char *te_err = probe_t_error(objective, t);
        if (te_err) ddm_fatal("--t %g: %s", t, te_err);
    }
    if (base == B_PCA) pca = pca_load(pca_path);
    DataSource *trs = data_open(&spec, "train", 1), *tes = cli_open_test(&spec, test_data);
    cli_print_data("probe", "train", trs);
    cli_print_data("probe", "test", tes);
    data_check_test_classes(trs, tes);
    Dataset tr = take_first(trs, n_train, po.seed, "--n-train"), te = take_first(tes, n_test, po.seed + 1, "--n-test");
    if (grid.n > 1 && probe_val_count(tr.n, val_frac) < 0)
        ddm_fatal("--val-frac %g of %d training images leaves no validation or no training images", val_frac, tr.n);
    int classes = tr.num_classes > te.num_classes ? tr.num_classes : te.num_classes;
    if (base == B_RANDOM && !m) {
        DitConfig c = {depth, hidden, heads, patch, tr.c, tr.h, tr.w, 0, 0, 4};
        const char *err = dit_config_error(&c);
        if (err) ddm_fatal("--baseline random: %s", err);
        m = dit_create(&c, ops);
        block = resolve_block(m, block_s, depth / 2 > 0 ? depth / 2 : 1);
        if (!args_seen(&ap, "t")) t = probe_default_t(objective);
        const char *te_err = probe_t_error(objective, t);
        if (te_err) ddm_fatal("--t %g: %s", t, te_err);
    }
    if (m && base == B_RANDOM) dit_init(m, po.seed);
    if (m && !ckpt[0]) objective_init(&obj, (ObjectiveKind)objective_parse(objective));   // the random network's

    // One feature set per probed block (a baseline: one set, nb = 1, blocks[0] = -1).
    int nb = 1, dim;
    int *blocks = xmalloc(sizeof(int) * (m ? m->cfg.depth : 1));
    blocks[0] = block;
    if (m && block < 0)
        for (nb = 0; nb < m->cfg.depth; nb++) blocks[nb] = nb;
    float **ftr = xmalloc(sizeof(float *) * nb), **fte = xmalloc(sizeof(float *) * nb);
    if (m) {
        const DitConfig *c = &m->cfg;
        if (tr.c != c->in_channels || tr.h != c->height || tr.w != c->width)
            ddm_fatal("%s takes %dx%dx%d images (channels x height x width), the data are %dx%dx%d",
                      ckpt[0] ? ckpt : "the random network", c->in_channels, c->height, c->width, tr.c, tr.h, tr.w);
        dim = c->hidden;
        if (model_pca) objective_set_pca(&obj, model_pca, tr.c, tr.h, tr.w, "the model's PCA tokenizer");
        probe_features_blocks(m, &obj, &tr, blocks, nb, t, feature_batch, po.seed, ftr);
        probe_features_blocks(m, &obj, &te, blocks, nb, t, feature_batch, po.seed ^ 0x9E3779B97F4A7C15ull, fte);
        char which[32];
        if (nb > 1) snprintf(which, sizeof which, "blocks 0..%d", c->depth - 1);
        else snprintf(which, sizeof which, "block %d", block);
        if (base == B_RANDOM)
            snprintf(source, sizeof source, "randomly initialised %s network (depth %d, hidden %d, seed %llu), %s, t = %g",
                     objective, c->depth, c->hidden, (unsigned long long)po.seed, which, t);
        else
            snprintf(source, sizeof source, "%s (%s weights, %s), %s of 0..%d, t = %g%s", ckpt, ema ? "EMA" : "raw",
                     objective, which, c->depth - 1, t, strcmp(precision, "fp32") ? ", bf16 matrix multiplies" : "");
        dit_free(m);
        pca_free(model_pca);
    } else if (pca) {
        pca_check_images(pca, tr.c, tr.h, tr.w, pca_path);
        ftr[0] = probe_features_pca(pca, &tr);
        fte[0] = probe_features_pca(pca, &te);
        dim = (tr.h / pca->patch) * (tr.w / pca->patch) * pca->d;
        snprintf(source, sizeof source, "PCA coefficients of %s (patch %d, d = %d)", pca_path, pca->patch, pca->d);
        pca_free(pca);
    } else {
        ftr[0] = probe_features_pixels(&tr);
        fte[0] = probe_features_pixels(&te);
        dim = tr.c * tr.h * tr.w;
        snprintf(source, sizeof source, "raw pixels");
    }
    double t_feat = now_seconds() - t0;
    printf("features: %s\n", source);
    printf("features dimension %d, %d train / %d test images, %d classes (%.2f s)\n", dim, tr.n, te.n, classes, t_feat);
    fflush(stdout);

    if (features_out[0]) save_features(features_out, ftr, fte, blocks, nb, dim, &tr, &te, source);

    cJSON *o = cJSON_CreateObject(), *per_block = nb > 1 ? cJSON_AddArrayToObject(o, "blocks") : NULL;
    for (int i = 0; i < nb; i++) {
        if (nb > 1) printf("block %d:\n", blocks[i]);
        ProbeResult r = run_probes(ftr[i], fte[i], &tr, &te, dim, classes, &po, &grid, knn_k, knn_temp);
        if (nb > 1) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "block", blocks[i]);
            add_result(e, &r, &grid);
            cJSON_AddItemToArray(per_block, e);
        } else {
            add_result(o, &r, &grid);
        }
        free(ftr[i]);
        free(fte[i]);
    }
    double total = now_seconds() - t0;
    printf("time: %.2f s\n", total);

    if (json[0]) {
        cJSON_AddStringToObject(o, "baseline", baseline);
        if (ckpt[0]) cJSON_AddStringToObject(o, "ckpt", ckpt);
        if (pca_path[0]) cJSON_AddStringToObject(o, "pca", pca_path);
        if (nb == 1 && block >= 0) cJSON_AddNumberToObject(o, "block", block);
        if (block >= 0 || nb > 1) {
            cJSON_AddNumberToObject(o, "t", t);
            cJSON_AddStringToObject(o, "objective", objective);
            cJSON_AddBoolToObject(o, "ema", base == B_NONE && ema);
            cJSON_AddStringToObject(o, "precision", precision);
        }
        cJSON_AddNumberToObject(o, "dim", dim);
        cJSON_AddNumberToObject(o, "n_train", tr.n);
        cJSON_AddNumberToObject(o, "n_test", te.n);
        cJSON_AddNumberToObject(o, "classes", classes);
        cJSON_AddNumberToObject(o, "knn_k", knn_k);
        cJSON_AddNumberToObject(o, "knn_t", knn_temp);
        cJSON_AddNumberToObject(o, "epochs", po.epochs);
        cJSON_AddNumberToObject(o, "lr", po.lr);
        cJSON_AddNumberToObject(o, "batch", po.batch);
        cJSON_AddNumberToObject(o, "warmup", po.warmup_epochs);
        cJSON *grid_json = cJSON_AddArrayToObject(o, "wd_grid");
        for (int i = 0; i < grid.n; i++) cJSON_AddItemToArray(grid_json, cJSON_CreateNumber(grid.wd[i]));
        if (grid.n > 1) cJSON_AddNumberToObject(o, "val_frac", grid.val_frac);
        cJSON_AddNumberToObject(o, "seed", (double)po.seed);
        cJSON_AddNumberToObject(o, "seconds_features", t_feat);
        cJSON_AddNumberToObject(o, "seconds", total);
        char *js = cJSON_Print(o);
        AtomicFile af = atomic_open(json);
        fputs(js, af.f);
        fputc('\n', af.f);
        atomic_commit(&af);
        free(js);
        printf("wrote %s\n", json);
    }
    cJSON_Delete(o);
    free(blocks);
    free(ftr);
    free(fte);
    dataset_free(&tr);
    dataset_free(&te);
    return 0;
}
