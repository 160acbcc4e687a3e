// ddm eval: how close generated images are to the data, in the feature space of the domain
// classifier (`ddm classifier train`; the Fréchet distance is then "FD-CNN", this project's FID for a
// dataset without Inception weights) or of Inception-v3 (`--features inception`: the standard FID,
// pytorch-fid's 2048-d pool features), plus KID and precision/recall — always beside the same figures
// for the real test split against the same reference, at the same sample count.
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "cli/cli_data.h"
#include "common.h"
#include "eval/classifier.h"
#include "eval/feature_sets.h"
#include "eval/inception.h"
#include "eval/metrics.h"
#include "io/imageset.h"
#include "infer/generate.h"
#include "model/model_load.h"

typedef struct { double fd, kid, kid_std, precision, recall; } SetScores;

// The feature extractor: the domain classifier or Inception-v3.
typedef struct { Classifier *cls; Inception *inc; int dim; } Extractor;

static float *features(const Extractor *ex, const float *imgs, int n, int c, int h, int w, const char *what) {
    if (ex->cls) return classifier_features_all(ex->cls, imgs, n);
    enum { CHUNK = 500 };
    long per = (long)c * h * w;
    float *f = xmalloc((size_t)n * ex->dim * sizeof(float));
    double t0 = now_seconds();
    for (int s = 0; s < n; s += CHUNK)
        inception_features(ex->inc, imgs + s * per, n - s < CHUNK ? n - s : CHUNK, c, h, w, f + (long)s * ex->dim);
    fprintf(stderr, "ddm eval: Inception-v3 features of %d images (%s): %.1f s\n", n, what, now_seconds() - t0);
    return f;
}

// warn: names the sets in the warning about singular covariances (NULL: no warning).
static SetScores score(const float *ref, const float *set, int n, int dim, const char *warn, int kid_subsets,
                       int kid_size, int k) {
    SetScores s;
    s.fd = fd_of_features(ref, n, set, n, dim, warn);
    kernel_inception_distance(ref, n, set, n, dim, kid_subsets, kid_size < n ? kid_size : n, 0, &s.kid, &s.kid_std);
    precision_recall(ref, n, set, n, dim, k, &s.precision, &s.recall);
    return s;
}

int cmd_eval(int argc, char **argv) {
    char cls_path[512] = "", feat_kind[16] = "cnn", inc_path[512] = "", inc_flavour[16] = "fid", samples[512] = "", ckpt[512] = "", json[512] = "",
         test_data[DATA_PATH_MAX] = "", device[16] = "", precision[8] = "fp32";
    DataSpec spec;
    data_spec_defaults(&spec);
    int n = 10000, raw = 0, kid_subsets = 100, kid_size = 1000, k = 3, threads = 0;
    GenerateOpts g;
    generate_opts_defaults(&g);
    ArgSpec specs[] = {
        {"features", ARG_STR, feat_kind, sizeof feat_kind, 0, 0,
         "cnn: the domain classifier (FD-CNN) | inception: Inception-v3 2048-d pool features (FID)", 0, NULL},
        {"classifier", ARG_STR, cls_path, sizeof cls_path, 0, 0, "--features cnn: the classifier from `ddm classifier train`", 0, NULL},
        {"inception", ARG_STR, inc_path, sizeof inc_path, 0, 0,
         "--features inception: weights (.safetensors from tools/inception_convert.py)", 0, NULL},
        {"inception-flavour", ARG_STR, inc_flavour, sizeof inc_flavour, 0, 0,
         "fid: pytorch-fid's FID blocks (TF FID weights) | torchvision: torchvision's blocks", 0, NULL},
        {"samples", ARG_STR, samples, sizeof samples, 0, 0, "images: .npy/.npz (FILE.npz:NAME picks an array, default arr_0) of "
         "float [N,C,H,W] in [-1,1] or uint8 [N,H,W,C] in [0,255]; or a directory of PNGs", 0, NULL},
        {"ckpt", ARG_STR, ckpt, sizeof ckpt, 0, 0, "or generate the images from this checkpoint", 0, NULL},
        {"n", ARG_INT, &n, 0, 2, 1e7, "images per set (the reference and the real test set use as many)", 0, NULL},
        CLI_GENERATE_FLAGS(g, raw),   // used with --ckpt
        {"seed", ARG_U64, &g.seed, 0, 0, 1.8e19, "seed of the generated samples and of the reference draw", 0, NULL},
        CLI_DATA_FLAGS(spec),   // the reference images: the train split; the baseline: the test split
        CLI_TEST_DATA_FLAG(test_data),
        {"kid-subsets", ARG_INT, &kid_subsets, 0, 1, 100000, "KID: number of subsets", 0, NULL},
        {"kid-size", ARG_INT, &kid_size, 0, 2, 1e7, "KID: subset size", 0, NULL},
        {"k", ARG_INT, &k, 0, 1, 1000, "precision/recall: k of the k-NN radii", 0, NULL},
        {"json", ARG_STR, json, sizeof json, 0, 0, "also write the results as JSON", 0, NULL},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0, NULL},
        CLI_DEVICE_FLAG(device),      // used with --ckpt
        {"precision", ARG_STR, precision, sizeof precision, 0, 0, CLI_PRECISION_HELP " when generating with --ckpt (fp32 unless given)", 0, NULL},
    };
    ArgParser p = {"eval", "Fréchet distance (FD-CNN on classifier features, or FID on Inception-v3 features), KID and "
                   "precision/recall of generated images.", specs, sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    cli_data_from_checkpoint(&spec, &p, ckpt, "eval");
    cli_set_threads(threads);
    const Ops *ops = cli_ops(device, precision);   // a bad --device or --precision fails before any work
    int use_inc = !strcmp(feat_kind, "inception");
    if (!use_inc && strcmp(feat_kind, "cnn") != 0) ddm_fatal("--features '%s': expected cnn or inception", feat_kind);
    int flavour = inception_flavour_parse(inc_flavour);
    if (flavour < 0) ddm_fatal("--inception-flavour '%s': expected fid or torchvision", inc_flavour);
    if (use_inc) {
        if (!inc_path[0])
            ddm_fatal("--features inception needs --inception FILE (Inception-v3 weights; see tools/inception_convert.py)");
        if (cls_path[0]) ddm_fatal("--classifier is for --features cnn, not --features inception");
    } else {
        if (inc_path[0] || args_seen(&p, "inception-flavour"))
            ddm_fatal("--inception and --inception-flavour need --features inception");
        if (!cls_path[0]) ddm_fatal("ddm eval needs --classifier (train one with `ddm classifier train`)");
    }
    if (!samples[0] == !ckpt[0]) ddm_fatal("ddm eval needs exactly one of --samples and --ckpt");
    Extractor ex = {0};
    if (use_inc) {
        ex.inc = inception_load(inc_path, (InceptionFlavour)flavour);
        ex.dim = INCEPTION_DIM;
    } else {
        ex.cls = classifier_load(cls_path);
        ex.dim = classifier_feature_dim(ex.cls);
    }
    DataSource *train = data_open(&spec, "train", 1), *test = cli_open_test(&spec, test_data);
    cli_print_data("eval", "reference (train)", train);
    cli_print_data("eval", "real test (baseline)", test);
    if (test->c != train->c || test->h != train->h || test->w != train->w)
        ddm_fatal("%s: the test split holds %dx%dx%d images, the train split (%s) %dx%dx%d", test->path, test->c, test->h,
                  test->w, train->path, train->c, train->h, train->w);
    ImageSet set = {0};
    if (samples[0]) {
        set = imageset_load(samples);
    } else {
        TrainConfig tc;
        Dit *m = model_load(ckpt, !raw, ops, &tc);
        generate_resolve(&g, m, &tc, ckpt);
        fprintf(stderr, "ddm eval: generating %d samples (%s, %d steps, cfg %g)\n", n, g.sampler, g.steps, g.cfg_scale);
        set = (ImageSet){n, m->cfg.in_channels, m->cfg.height, m->cfg.width, generate_samples(m, &tc, &g, n, NULL)};
        dit_free(m);
    }
    const char *src = samples[0] ? samples : ckpt;
    if (set.c != train->c || set.h != train->h || set.w != train->w)
        ddm_fatal("%s: images of %dx%dx%d (CxHxW), but the reference data (%s, train split) is %dx%dx%d", src, set.c,
                  set.h, set.w, train->path, train->c, train->h, train->w);
    if (ex.cls && (set.c != ex.cls->channels || set.h != ex.cls->height || set.w != ex.cls->width))
        ddm_fatal("%s: images of %dx%dx%d, but the classifier takes %dx%dx%d", src, set.c, set.h, set.w,
                  ex.cls->channels, ex.cls->height, ex.cls->width);
    if (set.n < n) {
        fprintf(stderr, "ddm eval: %s holds %d images; evaluating all of them (--n %d)\n", samples, set.n, n);
        n = set.n;
    }
    if (n <= k) ddm_fatal("%d images per set are too few: precision/recall with --k %d needs at least %d", n, k, k + 1);
    if (n > test->n)
        ddm_fatal("--n %d: the test split (%s) has only %lld images for the real-vs-real baseline", n, test->path, (long long)test->n);
    if (n > train->n)
        ddm_fatal("--n %d: the train split (%s) has only %lld images for the reference", n, train->path, (long long)train->n);
    int dim = ex.dim;
    float *ref_img = data_draw(train, n, g.seed), *test_img = data_draw(test, n, g.seed + 1);
    float *f_ref = features(&ex, ref_img, n, train->c, train->h, train->w, "reference, train split");
    float *f_set = features(&ex, set.images, n, set.c, set.h, set.w, "samples");
    float *f_test = features(&ex, test_img, n, test->c, test->h, test->w, "real test images");
    SetScores gen = score(f_ref, f_set, n, dim, "each set", kid_subsets, kid_size, k);
    SetScores real = score(f_ref, f_test, n, dim, NULL, kid_subsets, kid_size, k);
    const char *metric = ex.inc ? "FID" : "FD-CNN", *feat_path = ex.inc ? inc_path : cls_path;
    if (ex.inc)
        printf("features: FID (Inception-v3, 2048-d pool features), %s flavour (%s), weights %s, %d images per set, "
               "reference = train split\n", inception_flavour_name(flavour),
               flavour == INCEPTION_FID ? "pytorch-fid's FID blocks" : "torchvision's blocks", inc_path, n);
    else
        printf("features: %s (%d-d penultimate layer of the domain CNN), %d images per set, reference = train split\n",
               cls_path, dim, n);
    printf("%-22s %12s %12s %10s %10s\n", "set", metric, "KID", "precision", "recall");
    printf("%-22s %12.4f %12.6f %10.4f %10.4f\n", "samples", gen.fd, gen.kid, gen.precision, gen.recall);
    printf("%-22s %12.4f %12.6f %10.4f %10.4f\n", "real test (baseline)", real.fd, real.kid, real.precision, real.recall);
    if (json[0]) {
        AtomicFile af = atomic_open(json);
        fprintf(af.f, "{\"features\":\"%s\",\"extractor\":\"%s\",\"metric\":\"%s\",\"feature_dim\":%d,\"n\":%d,"
                "\"samples\":{\"fd\":%.6f,\"kid\":%.8f,\"kid_std\":%.8f,\"precision\":%.6f,\"recall\":%.6f},"
                "\"real_test\":{\"fd\":%.6f,\"kid\":%.8f,\"kid_std\":%.8f,\"precision\":%.6f,\"recall\":%.6f}}\n",
                feat_path, ex.inc ? (flavour == INCEPTION_FID ? "inception-fid" : "inception-torchvision") : "cnn",
                metric, dim, n, gen.fd, gen.kid, gen.kid_std, gen.precision, gen.recall, real.fd, real.kid,
                real.kid_std, real.precision, real.recall);
        atomic_commit(&af);
    }
    free(ref_img); free(test_img); free(f_ref); free(f_set); free(f_test);
    imageset_free(&set);
    data_close(train);
    data_close(test);
    classifier_free(ex.cls);
    inception_free(ex.inc);
    return 0;
}
