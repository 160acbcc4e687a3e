// Inception-v3 features (src/eval/inception.c) against PyTorch: for both flavours, the random weights
// and reference features that tools/inception_convert.py --random wrote (torchvision's inception_v3, and
// pytorch-fid's FID blocks built on it), on 2 images of 28x28x1 and 1 of 32x32x3 through the
// bilinear resize to 299x299. Usage: test_inception DIR (default build/ref/inception); a DIR/SKIP file
// (torchvision not importable when the references were made) skips the test with its reason.
#include <omp.h>
#include "eval/inception.h"
#include "io/npy.h"
#include "test.h"

static const char *g_dir = "build/ref/inception";

// Reports the largest absolute error, the largest relative error where |want| >= 0.1, and the largest
// |got - want| / (1e-4 + 1e-3 |want|), which must be <= 1.
static void compare(const char *what, const float *got, const float *want, long n) {
    double max_abs = 0, max_rel = 0, top = 0, ratio = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]), a = fabs(want[i]);
        max_abs = fmax(max_abs, d);
        if (a >= 0.1) max_rel = fmax(max_rel, d / a);
        top = fmax(top, a);
        ratio = fmax(ratio, d / (1e-4 + 1e-3 * a));
    }
    printf("  %s: max abs error %.3g, max rel error %.3g (|feature| >= 0.1; features up to %.3g), "
           "tolerance used %.2f\n", what, max_abs, max_rel, top, ratio);
    CHECK(close_enough(got, want, n, 1e-4, 1e-3, what), "%s: features within abs 1e-4 + rel 1e-3", what);
}

static void run_flavour(const char *flavour) {
    char path[512];
    snprintf(path, sizeof path, "%s/inception_%s.safetensors", g_dir, flavour);
    Inception *m = inception_load(path, (InceptionFlavour)inception_flavour_parse(flavour));
    const char *keys[2] = {"x1", "x3"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/inception_%s_%s.npy", g_dir, flavour, keys[k]);
        NpyArray x = npy_load_f32(path);
        snprintf(path, sizeof path, "%s/inception_%s_%s_feat.npy", g_dir, flavour, keys[k]);
        NpyArray want = npy_load_f32(path);
        int n = (int)x.shape[0];
        CHECK(x.ndim == 4 && want.ndim == 2 && want.shape[0] == n && want.shape[1] == INCEPTION_DIM,
              "%s %s: reference shapes", flavour, keys[k]);
        float *got = malloc((size_t)n * INCEPTION_DIM * sizeof(float));
        double t0 = omp_get_wtime();
        inception_features(m, x.data, n, (int)x.shape[1], (int)x.shape[2], (int)x.shape[3], got);
        char what[128];
        snprintf(what, sizeof what, "%s %d x %dx%dx%d (%.2f s)", flavour, n, (int)x.shape[1], (int)x.shape[2],
                 (int)x.shape[3], omp_get_wtime() - t0);
        compare(what, got, want.data, (long)n * INCEPTION_DIM);
        free(got);
        npy_free(&x);
        npy_free(&want);
    }
    inception_free(m);
}

// The test tells the flavours apart: the FID weights through torchvision's blocks miss the reference.
static void other_flavour_differs(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/inception_fid.safetensors", g_dir);
    fflush(stdout);
    Inception *m = inception_load(path, INCEPTION_TORCHVISION); // warns: the file says fid
    snprintf(path, sizeof path, "%s/inception_fid_x1.npy", g_dir);
    NpyArray x = npy_load_f32(path);
    snprintf(path, sizeof path, "%s/inception_fid_x1_feat.npy", g_dir);
    NpyArray want = npy_load_f32(path);
    long n = npy_numel(&want);
    float *got = malloc(n * sizeof(float));
    inception_features(m, x.data, (int)x.shape[0], 1, 28, 28, got);
    double max_abs = 0;
    for (long i = 0; i < n; i++) max_abs = fmax(max_abs, fabs((double)got[i] - want.data[i]));
    printf("  fid weights through torchvision's blocks: max abs difference %.3g from the fid reference\n", max_abs);
    CHECK(max_abs > 1e-2, "the torchvision flavour differs from the fid flavour (max abs %.3g)", max_abs);
    free(got);
    npy_free(&x);
    npy_free(&want);
    inception_free(m);
}

int main(int argc, char **argv) {
    if (argc > 1) g_dir = argv[1];
    char skip[512];
    snprintf(skip, sizeof skip, "%s/SKIP", g_dir);
    FILE *f = fopen(skip, "r");
    if (f) {
        char why[400] = "";
        if (!fgets(why, sizeof why, f)) why[0] = 0;
        fclose(f);
        printf("%s: SKIPPED (no reference features): %s", __FILE__, why);
        TEST_MAIN_END();
    }
    CHECK(inception_flavour_parse("fid") == INCEPTION_FID && inception_flavour_parse("torchvision") == INCEPTION_TORCHVISION &&
          inception_flavour_parse("tf") == -1, "flavour names");
    run_flavour("fid");
    run_flavour("torchvision");
    other_flavour_differs();
    TEST_MAIN_END();
}
