#include "data/augment.h"
#include <math.h>

CropBox crop_box_sample(Rng *r, int H, int W, float scale_min) {
    const double log_lo = log(3.0 / 4.0), log_hi = log(4.0 / 3.0);
    for (int attempt = 0; attempt < 10; attempt++) {
        double area = H * (double)W * (scale_min + (1 - scale_min) * rng_uniform(r));
        double aspect = exp(log_lo + (log_hi - log_lo) * rng_uniform(r));
        double w = sqrt(area * aspect), h = sqrt(area / aspect);
        if (w > W || h > H) continue;
        // corner uniform over the positions that keep the window inside (continuous: no rounding needed
        // since the resize samples between pixels anyway)
        float y0 = (float)((H - h) * rng_uniform(r)), x0 = (float)((W - w) * rng_uniform(r));
        return (CropBox){y0, x0, (float)h, (float)w};
    }
    return (CropBox){0, 0, (float)H, (float)W};
}

// Source coordinate of output pixel i along an axis of n pixels for a window [start, start + len):
// pixel centres map to pixel centres (align_corners = False), clamped to the image.
static float source_coord(int i, int n, float start, float len) {
    float s = start + (i + 0.5f) * len / n - 0.5f;
    return s < 0 ? 0 : s > n - 1 ? (float)(n - 1) : s;
}

void crop_resize(const float *src, float *dst, int C, int H, int W, CropBox b, int flip) {
    for (int i = 0; i < H; i++) {
        float sy = source_coord(i, H, b.y0, b.h);
        int y_lo = (int)sy, y_hi = y_lo + 1 < H ? y_lo + 1 : y_lo;
        float fy = sy - y_lo;
        for (int k = 0; k < W; k++) {
            float sx = source_coord(flip ? W - 1 - k : k, W, b.x0, b.w);
            int x_lo = (int)sx, x_hi = x_lo + 1 < W ? x_lo + 1 : x_lo;
            float fx = sx - x_lo;
            for (int ch = 0; ch < C; ch++) {
                const float *p = src + (long)ch * H * W;
                float top = p[y_lo * W + x_lo] + fx * (p[y_lo * W + x_hi] - p[y_lo * W + x_lo]);
                float bot = p[y_hi * W + x_lo] + fx * (p[y_hi * W + x_hi] - p[y_hi * W + x_lo]);
                dst[((long)ch * H + i) * W + k] = top + fy * (bot - top);
            }
        }
    }
}
