// ddm eval: how close generated images are to the data, in the feature space of the domain
// classifier (`ddm classifier train`): Fréchet distance ("FD-CNN", this project's FID for datasets
// without Inception weights), KID and precision/recall — always beside the same figures for the real
// test split against the same reference, at the same sample count.
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "common.h"
#include "data/dataset.h"
#include "eval/classifier.h"
#include "eval/metrics.h"
#include "io/imageset.h"
#include "rng.h"
#include "train/generate.h"
#include "train/model_load.h"

typedef struct { double fd, kid, kid_std, precision, recall; } SetScores;

static float *features(Classifier *cls, const float *imgs, int n) {
    int dim = classifier_feature_dim(cls);
    long per = (long)cls->channels * cls->height * cls->width;
    float *f = xmalloc((size_t)n * dim * sizeof(float));
    for (int s = 0; s < n; s += 500) classifier_features(cls, imgs + s * per, n - s < 500 ? n - s : 500, f + (long)s * dim);
    return f;
}

// n images of a split, drawn without replacement with a fixed seed.
static float *pick(const Dataset *d, int n, uint64_t seed) {
    long per = (long)d->c * d->h * d->w;
    int *perm = xmalloc(d->n * sizeof(int));
    Rng r;
    rng_init(&r, seed, 0xE7A1);
    rng_permutation(&r, perm, d->n);
    float *x = xmalloc((size_t)n * per * sizeof(float));
    for (int i = 0; i < n; i++) memcpy(x + i * per, d->images + (long)perm[i] * per, per * sizeof(float));
    free(perm);
    return x;
}

// warn: names the sets in the warning about singular covariances (NULL: no warning).
static SetScores score(const float *ref, const float *set, int n, int dim, const char *warn, int kid_subsets,
                       int kid_size, int k) {
    SetScores s;
    FeatStats a, b;
    featstats_init(&a, dim);
    featstats_init(&b, dim);
    featstats_add(&a, ref, n);
    featstats_add(&b, set, n);
    if (warn) featstats_warn_if_singular(&b, warn);
    double *mu1 = xmalloc(dim * sizeof(double)), *mu2 = xmalloc(dim * sizeof(double));
    double *c1 = xmalloc((size_t)dim * dim * sizeof(double)), *c2 = xmalloc((size_t)dim * dim * sizeof(double));
    featstats_mean_cov(&a, mu1, c1);
    featstats_mean_cov(&b, mu2, c2);
    s.fd = frechet_distance(mu1, c1, mu2, c2, dim);
    kernel_inception_distance(ref, n, set, n, dim, kid_subsets, kid_size < n ? kid_size : n, 0, &s.kid, &s.kid_std);
    precision_recall(ref, n, set, n, dim, k, &s.precision, &s.recall);
    featstats_free(&a); featstats_free(&b);
    free(mu1); free(mu2); free(c1); free(c2);
    return s;
}

int cmd_eval(int argc, char **argv) {
    char cls_path[512] = "", samples[512] = "", ckpt[512] = "", data[512] = DDM_FASHION_MNIST_DIR, json[512] = "";
    int n = 10000, raw = 0, kid_subsets = 100, kid_size = 1000, k = 3, threads = 0;
    GenerateOpts g;
    generate_opts_defaults(&g);
    ArgSpec specs[] = {
        {"classifier", ARG_STR, cls_path, sizeof cls_path, 0, 0, "feature extractor from `ddm classifier train`", 0},
        {"samples", ARG_STR, samples, sizeof samples, 0, 0, "images: .npy/.npz (FILE.npz:NAME picks an array, default arr_0) of "
         "float [N,C,H,W] in [-1,1] or uint8 [N,H,W,C] in [0,255]; or a directory of PNGs", 0},
        {"ckpt", ARG_STR, ckpt, sizeof ckpt, 0, 0, "or generate the images from this checkpoint", 0},
        {"n", ARG_INT, &n, 0, 2, 1e7, "images per set (the reference and the real test set use as many)", 0},
        {"sampler", ARG_STR, g.sampler, sizeof g.sampler, 0, 0, "with --ckpt: heun | euler | sde | ddpm | ddim", 0},
        {"steps", ARG_INT, &g.steps, 0, 0, 100000, "with --ckpt: sampling steps (0 = the sampler's default)", 0},
        {"cfg", ARG_FLOAT, &g.cfg_scale, 0, 0, 100, "with --ckpt: classifier-free guidance scale", 0},
        {"class", ARG_INT, &g.cls, 0, -2, 1e6, "with --ckpt: class of every sample; -1 random; -2 cycle", 0},
        {"raw", ARG_BOOL, &raw, 0, 0, 1, "with --ckpt: raw weights instead of the EMA", 0},
        {"batch", ARG_INT, &g.batch, 0, 1, 65536, "with --ckpt: samples per model call", 0},
        {"seed", ARG_U64, &g.seed, 0, 0, 1.8e19, "seed of the generated samples and of the reference draw", 0},
        {"data", ARG_STR, data, sizeof data, 0, 0, "Fashion-MNIST directory (reference: train split; baseline: test split)", 0},
        {"kid-subsets", ARG_INT, &kid_subsets, 0, 1, 100000, "KID: number of subsets", 0},
        {"kid-size", ARG_INT, &kid_size, 0, 2, 1e7, "KID: subset size", 0},
        {"k", ARG_INT, &k, 0, 1, 1000, "precision/recall: k of the k-NN radii", 0},
        {"json", ARG_STR, json, sizeof json, 0, 0, "also write the results as JSON", 0},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0},
    };
    ArgParser p = {"eval", "Fréchet distance (classifier features), KID and precision/recall of generated images.",
                   specs, sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    cli_set_threads(threads);
    if (!cls_path[0]) ddm_fatal("ddm eval needs --classifier (train one with `ddm classifier train`)");
    if (!samples[0] == !ckpt[0]) ddm_fatal("ddm eval needs exactly one of --samples and --ckpt");
    Classifier *cls = classifier_load(cls_path);
    Dataset train = dataset_load_fashion_mnist(data, "train"), test = dataset_load_fashion_mnist(data, "test");
    ImageSet set = {0};
    if (samples[0]) {
        set = imageset_load(samples);
    } else {
        TrainConfig tc;
        Dit *m = model_load(ckpt, !raw, &tc);
        generate_resolve(&g, m, &tc, ckpt);
        fprintf(stderr, "ddm eval: generating %d samples (%s, %d steps, cfg %g)\n", n, g.sampler, g.steps, g.cfg_scale);
        set = (ImageSet){n, m->cfg.in_channels, m->cfg.height, m->cfg.width, generate_samples(m, &tc, &g, n, NULL)};
        dit_free(m);
    }
    const char *src = samples[0] ? samples : ckpt;
    if (set.c != train.c || set.h != train.h || set.w != train.w)
        ddm_fatal("%s: images of %dx%dx%d (CxHxW), but the reference data (%s, train split) is %dx%dx%d", src, set.c,
                  set.h, set.w, data, train.c, train.h, train.w);
    if (set.c != cls->channels || set.h != cls->height || set.w != cls->width)
        ddm_fatal("%s: images of %dx%dx%d, but the classifier takes %dx%dx%d", src, set.c,
                  set.h, set.w, cls->channels, cls->height, cls->width);
    if (set.n < n) {
        fprintf(stderr, "ddm eval: %s holds %d images; evaluating all of them (--n %d)\n", samples, set.n, n);
        n = set.n;
    }
    if (n <= k) ddm_fatal("%d images per set are too few: precision/recall with --k %d needs at least %d", n, k, k + 1);
    if (n > test.n) ddm_fatal("--n %d: the test split has only %d images for the real-vs-real baseline", n, test.n);
    int dim = classifier_feature_dim(cls);
    float *ref_img = pick(&train, n, g.seed), *test_img = pick(&test, n, g.seed + 1);
    float *f_ref = features(cls, ref_img, n), *f_set = features(cls, set.images, n), *f_test = features(cls, test_img, n);
    SetScores gen = score(f_ref, f_set, n, dim, "each set", kid_subsets, kid_size, k);
    SetScores real = score(f_ref, f_test, n, dim, NULL, kid_subsets, kid_size, k);
    printf("features: %s (%d-d penultimate layer of the domain CNN), %d images per set, reference = train split\n",
           cls_path, dim, n);
    printf("%-22s %12s %12s %10s %10s\n", "set", "FD-CNN", "KID", "precision", "recall");
    printf("%-22s %12.4f %12.6f %10.4f %10.4f\n", "samples", gen.fd, gen.kid, gen.precision, gen.recall);
    printf("%-22s %12.4f %12.6f %10.4f %10.4f\n", "real test (baseline)", real.fd, real.kid, real.precision, real.recall);
    if (json[0]) {
        AtomicFile af = atomic_open(json);
        fprintf(af.f, "{\"features\":\"%s\",\"feature_dim\":%d,\"n\":%d,\"samples\":{\"fd\":%.6f,\"kid\":%.8f,"
                "\"kid_std\":%.8f,\"precision\":%.6f,\"recall\":%.6f},\"real_test\":{\"fd\":%.6f,\"kid\":%.8f,"
                "\"kid_std\":%.8f,\"precision\":%.6f,\"recall\":%.6f}}\n", cls_path, dim, n, gen.fd, gen.kid,
                gen.kid_std, gen.precision, gen.recall, real.fd, real.kid, real.kid_std, real.precision, real.recall);
        atomic_commit(&af);
    }
    free(ref_img); free(test_img); free(f_ref); free(f_set); free(f_test);
    imageset_free(&set);
    dataset_free(&train);
    dataset_free(&test);
    classifier_free(cls);
    return 0;
}
