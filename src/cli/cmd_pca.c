// ddm pca: fit a patch-wise PCA tokenizer (l-DAE, SPEC §1.2) on randomly sampled patches of a dataset's
// images (any format of data.h), print the explained variance per kept component and save it as safetensors.
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "cli/cli_data.h"
#include "common.h"
#include "data/dataset.h"
#include "tok/pca.h"

int cmd_pca(int argc, char **argv) {
    char split[16] = "train", out[512] = "pca.safetensors", test_data[DATA_PATH_MAX] = "";
    int patch = 4, dim = 16, patches = 100000, center = 1, whiten = 0, threads = 0, n_images = 0;
    uint64_t seed = 0;
    DataSpec spec;
    data_spec_defaults(&spec);
    ArgSpec specs[] = {
        CLI_DATA_FLAGS(spec),
        CLI_TEST_DATA_FLAG(test_data),
        {"split", ARG_STR, split, sizeof split, 0, 0, "train or test", 0, NULL},
        {"n-images", ARG_INT, &n_images, 0, 0, 1 << 30, "fit on the first N images of the split (a seeded subset for an "
         "ImageFolder, whose files are grouped by class; 0 = all)", 0, NULL},
        {"patch", ARG_INT, &patch, 0, 1, 1024, "patch size p (patch dimension D = p*p*channels)", 0, NULL},
        {"dim", ARG_INT, &dim, 0, 1, 1 << 20, "kept components d (1..D)", 0, NULL},
        {"patches", ARG_INT, &patches, 0, 2, 2000000000, "number of randomly sampled patches to fit on", 0, NULL},
        {"center", ARG_INT, &center, 0, 0, 1, "subtract the mean patch (1 = on, 0 = off)", 0, NULL},
        {"whiten", ARG_INT, &whiten, 0, 0, 1, "divide each coordinate by sqrt(eigenvalue) (1 = on, 0 = off)", 0, NULL},
        {"seed", ARG_U64, &seed, 0, 0, 1.8e19, "seed of the patch sampling", 0, NULL},
        {"out", ARG_STR, out, sizeof out, 0, 0, "output tokenizer (.safetensors)", 0, NULL},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0, NULL},
    };
    ArgParser ap = {"pca", "Fit a patch-wise PCA tokenizer (l-DAE) on random patches of the training images.", specs,
                    sizeof specs / sizeof specs[0]};
    args_parse(&ap, argc, argv);
    cli_set_threads(threads);
    if (!out[0]) ddm_fatal("ddm pca needs --out");
    if (strcmp(split, "train") && strcmp(split, "test")) ddm_fatal("--split '%s': expected train or test", split);
    DataSource *src = strcmp(split, "train") ? cli_open_test(&spec, test_data) : data_open(&spec, "train", 1);
    cli_print_data("pca", "data", src);
    Dataset ds = data_materialize(src, n_images, seed, "--n-images");
    data_close(src);
    long D = (long)patch * patch * ds.c;
    if (dim > D)
        ddm_fatal("--dim %d is larger than the patch dimension D = %ld (patch %d x %d x %d)", dim, D,
                  patch, patch, ds.c);
    if (ds.h % patch || ds.w % patch)
        ddm_fatal("--patch %d: image size %dx%d is not divisible by the patch size %d", patch, ds.h, ds.w, patch);
    if (dim > patches) ddm_fatal("--dim %d is larger than the number of sampled patches (--patches %d)", dim, patches);
    double t0 = now_seconds();
    Pca *p = pca_fit(ds.images, ds.n, ds.c, ds.h, ds.w, patch, dim, patches, center, whiten, seed);
    double dt = now_seconds() - t0;
    printf("PCA tokenizer: patch %d x %d x %d (D = %d), d = %d, %d patches from %d %s images, %s, %s (%.2f s)\n",
           patch, patch, ds.c, p->D, p->d, patches, ds.n, split, center ? "centred" : "not centred",
           whiten ? "whitened" : "not whitened", dt);
    printf("explained variance (fraction of the %s over all %d components):\n",
           center ? "total variance" : "total second moment", p->D);
    int width = dim >= 1000 ? 4 : dim >= 100 ? 3 : 2;
    double cum = 0;
    for (int k = 0; k < p->d; k++) {
        double e = pca_explained(p, k);
        cum += e;
        printf("component %*d: %.2f%%  (cumulative %.2f%%)\n", width, k + 1, 100 * e, 100 * cum);
    }
    printf("cumulative at d = %d: %.2f%%\n", p->d, 100 * cum);
    pca_save(p, out);
    printf("wrote %s\n", out);
    pca_free(p);
    dataset_free(&ds);
    return 0;
}
