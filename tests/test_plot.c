// The line-chart renderer: nice axis ranges and ticks, a known line drawn where expected in a PNG
// of the requested size, NaN gaps, log-y with non-positive values.
#include "test.h"
#include "io/plot.h"
#include <stb_image.h>
#include <string.h>
#include <unistd.h>

static int is_nice(double step) {
    double m = step / pow(10, floor(log10(step) + 1e-9));
    return fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9;
}

static void check_axis(double lo, double hi, int max_ticks, double want_lo, double want_hi, double want_step) {
    PlotAxis a = plot_nice_axis(lo, hi, max_ticks);
    CHECK(fabs(a.lo - want_lo) < 1e-9 && fabs(a.hi - want_hi) < 1e-9 && fabs(a.step - want_step) < 1e-12,
          "axis(%g, %g, %d) = [%g, %g] step %g, want [%g, %g] step %g", lo, hi, max_ticks, a.lo, a.hi, a.step,
          want_lo, want_hi, want_step);
    CHECK(a.n <= max_ticks && a.n >= 2 && fabs(a.lo + (a.n - 1) * a.step - a.hi) < 1e-9 * (1 + fabs(a.hi)),
          "axis(%g, %g): %d ticks", lo, hi, a.n);
    CHECK(is_nice(a.step) && a.lo <= lo + 1e-12 && a.hi >= hi - 1e-12, "axis(%g, %g) covers, nice step", lo, hi);
}

static void test_nice_axis(void) {
    check_axis(0, 300, 6, 0, 300, 100);
    check_axis(0, 300, 11, 0, 300, 50);
    check_axis(0.093, 0.87, 11, 0, 0.9, 0.1);
    check_axis(-0.37, 2.1, 6, -1, 3, 1);
    check_axis(-0.37, 2.1, 8, -0.5, 2.5, 0.5);
    check_axis(1234, 98765, 6, 0, 100000, 20000);
    check_axis(3, 3, 5, 2.6, 3.4, 0.2);   // widened by 10%
    check_axis(0, 0, 5, -1, 1, 0.5);
    check_axis(1e-5, 3.2e-5, 5, 1e-5, 4e-5, 1e-5);
    check_axis(1e-5, 3.2e-5, 6, 1e-5, 3.5e-5, 5e-6);
}

static const unsigned char *pixel(const unsigned char *img, int w, int x, int y) {
    return img + ((size_t)y * w + x) * 3;
}

// Colour distance of a pixel to rgb (max over channels).
static int dist(const unsigned char *p, const unsigned char *rgb) {
    int d = 0;
    for (int k = 0; k < 3; k++) d = abs(p[k] - rgb[k]) > d ? abs(p[k] - rgb[k]) : d;
    return d;
}

// Bounding box of pixels close to rgb.
static int colour_box(const unsigned char *img, int w, int h, const unsigned char *rgb, int *x0, int *y0, int *x1,
                      int *y1) {
    int n = 0;
    *x0 = w, *y0 = h, *x1 = -1, *y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (dist(pixel(img, w, x, y), rgb) < 40) {
                n++;
                if (x < *x0) *x0 = x;
                if (x > *x1) *x1 = x;
                if (y < *y0) *y0 = y;
                if (y > *y1) *y1 = y;
            }
    return n;
}

// A line y = x from (0, 0) to (10, 10): its pixels lie on the diagonal of the plot area (rising to the
// right), away from the legend.
static void test_diagonal_png(void) {
    double x[11], y[11];
    for (int i = 0; i <= 10; i++) x[i] = i, y[i] = i;
    Plot p;
    plot_init(&p, "known line", "x", "y");
    p.antialias = 0;
    p.legend = 0;
    plot_add_series(&p, "y = x", x, y, 11);
    char path[] = "/tmp/ddm-test-plot-XXXXXX.png";
    int fd = mkstemps(path, 4);
    close(fd);
    plot_write_png(&p, path, 320, 240);
    int w = 0, h = 0, c = 0;
    unsigned char *img = stbi_load(path, &w, &h, &c, 3);
    CHECK(img && w == 320 && h == 240, "PNG of 320x240 (got %dx%d)", w, h);
    if (!img) { plot_free(&p); unlink(path); return; }
    const unsigned char white[3] = {255, 255, 255};
    CHECK(dist(pixel(img, w, 0, 0), white) == 0 && dist(pixel(img, w, w - 1, h - 1), white) == 0,
          "white background in the corners");
    // The series pixels (no legend) span a diagonal: find its ends.
    const unsigned char *rgb = p.series[0].rgb;
    int bx0, by0, bx1, by1, n = colour_box(img, w, h, rgb, &bx0, &by0, &bx1, &by1);
    CHECK(n > 100 && bx1 - bx0 > w / 2 && by1 - by0 > h / 2, "series drawn over most of the area (%d px)", n);
    // Along the line: a pixel of the series colour near each interpolated point.
    int hits = 0, tries = 0;
    for (int i = 1; i < 10; i++) {
        int px = bx0 + (bx1 - bx0) * i / 10, py = by1 - (by1 - by0) * i / 10, found = 0;
        for (int dy = -3; dy <= 3 && !found; dy++)
            for (int dx = -3; dx <= 3 && !found; dx++) found = dist(pixel(img, w, px + dx, py + dy), rgb) < 40;
        hits += found, tries++;
    }
    CHECK(hits == tries, "series colour along the diagonal (%d of %d)", hits, tries);
    // Below the diagonal, in the lower right, there is no series colour.
    int stray = 0;
    for (int y = by1 - (by1 - by0) / 4; y < by1 - 5; y++)
        for (int x = bx1 - (bx1 - bx0) / 4; x < bx1; x++) stray += dist(pixel(img, w, x, y), rgb) < 40;
    CHECK(stray == 0, "no series pixels off the line (%d)", stray);
    stbi_image_free(img);
    plot_free(&p);
    unlink(path);
}

static int count_colour(const unsigned char *img, int w, int h, const unsigned char *rgb) {
    int x0, y0, x1, y1;
    return colour_box(img, w, h, rgb, &x0, &y0, &x1, &y1);
}

static void test_nan_gap(void) {
    double x[6] = {0, 1, 2, 3, 4, 5}, y[6] = {1, 2, NAN, INFINITY, 3, 4}, z[3] = {NAN, NAN, NAN};
    Plot p;
    plot_init(&p, "gaps", "", "");
    plot_add_series(&p, "gappy", x, y, 6);
    plot_add_series(&p, "all nan", x, z, 3);
    unsigned char *img = plot_render(&p, 300, 200);
    CHECK(img != NULL, "rendered with NaN points");
    CHECK(count_colour(img, 300, 200, p.series[0].rgb) > 50, "finite parts drawn");
    free(img);
    p.legend = 0;
    img = plot_render(&p, 300, 200);
    int x0, y0, x1, y1, gap = 0;
    colour_box(img, 300, 200, p.series[0].rgb, &x0, &y0, &x1, &y1);
    for (int y = 0; y < 200; y++) gap += dist(pixel(img, 300, (x0 + x1) / 2, y), p.series[0].rgb) < 40;
    CHECK(x1 - x0 > 150 && gap == 0, "a gap where the points are NaN/Inf (%d px in the middle column)", gap);
    free(img);
    plot_free(&p);
    Plot e;
    plot_init(&e, "", "", "");
    img = plot_render(&e, 200, 150);
    CHECK(img != NULL, "empty plot renders");
    free(img);
    plot_free(&e);
}

static void test_logy(void) {
    double x[5] = {0, 1, 2, 3, 4}, y[5] = {-1, 0, 0.1, 1, 100};
    Plot p;
    plot_init(&p, "log", "step", "loss");
    p.logy = 1;
    plot_add_series(&p, "s", x, y, 5);
    unsigned char *img = plot_render(&p, 400, 300);
    CHECK(count_colour(img, 400, 300, p.series[0].rgb) > 50, "log-y: positive values drawn");
    free(img);
    double neg[3] = {-1, 0, -5};
    plot_add_series(&p, "none positive", x, neg, 3);
    img = plot_render(&p, 400, 300);
    CHECK(img != NULL, "log-y with only non-positive values renders");
    free(img);
    plot_free(&p);
}

int main(void) {
    test_nice_axis();
    test_diagonal_png();
    test_nan_gap();
    test_logy();
    TEST_MAIN_END();
}
