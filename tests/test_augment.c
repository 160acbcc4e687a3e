// Random resized crops: exact copy for the whole-image box, exact mirror, bilinear sampling checked on a
// linear ramp (which bilinear interpolation reproduces exactly), and the window statistics.
#include "test.h"
#include "common.h"
#include "data/augment.h"

enum { C = 2, H = 9, W = 13 };

static void fill_random(float *x, long n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 0);
    for (long i = 0; i < n; i++) x[i] = rng_normal(&r);
}

static void test_whole_box_copies_and_mirrors(void) {
    float src[C * H * W], dst[C * H * W];
    fill_random(src, C * H * W, 1);
    CropBox whole = {0, 0, H, W};
    crop_resize(src, dst, C, H, W, whole, 0);
    CHECK(memcmp(src, dst, sizeof src) == 0, "whole-image box is an exact copy");
    crop_resize(src, dst, C, H, W, whole, 1);
    int mirrored = 1;
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < H; i++)
            for (int k = 0; k < W; k++)
                mirrored &= dst[(ch * H + i) * W + k] == src[(ch * H + i) * W + (W - 1 - k)];
    CHECK(mirrored, "whole-image box with flip is an exact mirror");
}

// f(y, x) = 0.3 y - 0.7 x + c: the resize of an interior window must equal f at the mapped pixel centres.
static void test_bilinear_on_a_ramp(void) {
    float src[C * H * W], dst[C * H * W];
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < H; i++)
            for (int k = 0; k < W; k++) src[(ch * H + i) * W + k] = 0.3f * i - 0.7f * k + ch;
    CropBox b = {1.25f, 2.5f, 5.5f, 7.0f};   // maps pixel centres to y in [1.05, 5.94], x in [2.27, 8.73]: no clamping
    for (int flip = 0; flip <= 1; flip++) {
        crop_resize(src, dst, C, H, W, b, flip);
        float want[C * H * W];
        for (int ch = 0; ch < C; ch++)
            for (int i = 0; i < H; i++)
                for (int k = 0; k < W; k++) {
                    int kk = flip ? W - 1 - k : k;
                    float sy = b.y0 + (i + 0.5f) * b.h / H - 0.5f, sx = b.x0 + (kk + 0.5f) * b.w / W - 0.5f;
                    want[(ch * H + i) * W + k] = 0.3f * sy - 0.7f * sx + ch;
                }
        CHECK(close_enough(dst, want, C * H * W, 1e-5, 1e-5, "ramp"), "bilinear resize of a ramp (flip %d)", flip);
    }
    // a window reaching past the last pixel centre clamps: the bottom-right output equals the corner pixel
    CropBox edge = {H - 2, W - 2, 2, 2};
    crop_resize(src, dst, C, H, W, edge, 0);
    CHECK(dst[H * W - 1] == src[H * W - 1], "clamped at the edge: %g vs %g", dst[H * W - 1], src[H * W - 1]);
}

static void test_box_statistics(void) {
    Rng r;
    rng_init(&r, 7, 0);
    int n = 4000, inside = 1, in_range = 1;
    double amin = 1, amax = 0;
    for (int s = 0; s < n; s++) {
        CropBox b = crop_box_sample(&r, 28, 28, 0.3f);
        inside &= b.y0 >= 0 && b.x0 >= 0 && b.y0 + b.h <= 28 + 1e-4 && b.x0 + b.w <= 28 + 1e-4;
        double area = b.h * b.w / (28.0 * 28.0), aspect = b.w / b.h;
        if (!(b.h == 28 && b.w == 28))   // the fallback is the whole image
            in_range &= area >= 0.3 - 1e-5 && area <= 1 + 1e-5 && aspect >= 0.75 - 1e-5 && aspect <= 4.0 / 3 + 1e-5;
        if (area < amin) amin = area;
        if (area > amax) amax = area;
    }
    CHECK(inside, "every window lies inside the image");
    CHECK(in_range, "area fraction in [0.3, 1], aspect in [3/4, 4/3]");
    CHECK(amin < 0.32 && amax > 0.95, "windows span the scale range: %.3f .. %.3f", amin, amax);
    // same stream, same windows
    Rng a, c;
    rng_init(&a, 3, 9);
    rng_init(&c, 3, 9);
    CropBox ba = crop_box_sample(&a, 28, 28, 0.5f), bc = crop_box_sample(&c, 28, 28, 0.5f);
    CHECK(memcmp(&ba, &bc, sizeof ba) == 0, "deterministic for a given stream");
    // scale_min 1 with a non-square aspect never fits: most draws fall back to the whole image
    rng_init(&a, 4, 0);
    int whole = 0;
    for (int s = 0; s < 100; s++) {
        CropBox b = crop_box_sample(&a, 28, 28, 1.0f);
        whole += b.h == 28 && b.w == 28 && b.y0 == 0 && b.x0 == 0;
    }
    CHECK(whole >= 95, "scale 1: whole image (%d of 100)", whole);
}

int main(void) {
    test_whole_box_copies_and_mirrors();
    test_bilinear_on_a_ramp();
    test_box_statistics();
    printf("%d passed, %d failed\n", t_pass, t_fail);
    return t_fail > 0;
}
