#include "io/png.h"
#include "common.h"
#include <stb_image.h>
#include <stb_image_write.h>
#include <zlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Mid-grey, so the border separates tiles on both dark and light backgrounds.
#define PNG_BORDER 128

static unsigned char to_byte(float v, float lo, float hi) {
    float t = (v - lo) / (hi - lo) * 255.0f;
    if (!(t > 0.0f)) return 0; // also catches NaN
    if (t >= 255.0f) return 255;
    return (unsigned char)(t + 0.5f);
}

static void check_args(const char *path, int n, int c, int h, int w, int ncols, int pad, int scale, float lo,
                       float hi) {
    if (c != 1 && c != 3)
        ddm_fatal("%s: cannot write images with %d channels as PNG (expected 1 for grey or 3 for RGB)", path, c);
    if (n < 1 || h < 1 || w < 1)
        ddm_fatal("%s: nothing to write: %d images of %dx%d", path, n, h, w);
    if (ncols < 1 || pad < 0 || scale < 1)
        ddm_fatal("%s: bad grid layout: ncols=%d pad=%d scale=%d (need ncols >= 1, pad >= 0, scale >= 1)", path,
                  ncols, pad, scale);
    if (!(hi > lo)) ddm_fatal("%s: bad value range [%g, %g] (need hi > lo)", path, lo, hi);
}

static void write_to_file(void *ctx, void *data, int size) {
    fwrite(data, 1, (size_t)size, (FILE *)ctx);
}

// Copies image i (scaled) into its grid cell of canvas (W pixels wide, c bytes per pixel).
static void blit(unsigned char *canvas, int W, const float *img, int c, int h, int w, int x0, int y0, int scale,
                 float lo, float hi) {
    for (int y = 0; y < h * scale; y++)
        for (int x = 0; x < w * scale; x++)
            for (int ch = 0; ch < c; ch++) {
                float v = img[((size_t)ch * h + y / scale) * w + x / scale];
                canvas[((size_t)(y0 + y) * W + (x0 + x)) * c + ch] = to_byte(v, lo, hi);
            }
}

// The grid as an RGB/grey canvas of *W x *H pixels (malloc'd); `what` names the output in errors.
static unsigned char *grid_canvas(const char *what, const float *imgs, int n, int c, int h, int w, int ncols, int pad,
                                  int scale, float lo, float hi, int64_t *Wp, int64_t *Hp) {
    check_args(what, n, c, h, w, ncols, pad, scale, lo, hi);
    if (ncols > n) ncols = n;
    int nrows = (n + ncols - 1) / ncols;
    int64_t cell_w = (int64_t)w * scale, cell_h = (int64_t)h * scale;
    int64_t W = ncols * (cell_w + pad) + pad, H = nrows * (cell_h + pad) + pad;
    if (W > (1 << 20) || H > (1 << 20) || W * H * c > INT32_MAX)
        ddm_fatal("%s: grid of %lldx%lld pixels is too large for a PNG; use fewer images or a smaller scale",
                  what, (long long)W, (long long)H);
    unsigned char *canvas = xmalloc((size_t)(W * H * c));
    memset(canvas, PNG_BORDER, (size_t)(W * H * c));
    for (int i = 0; i < n; i++) {
        int64_t x0 = pad + (i % ncols) * (cell_w + pad), y0 = pad + (i / ncols) * (cell_h + pad);
        blit(canvas, (int)W, imgs + (size_t)i * c * h * w, c, h, w, (int)x0, (int)y0, scale, lo, hi);
    }
    *Wp = W;
    *Hp = H;
    return canvas;
}

typedef struct { unsigned char *p; size_t len, cap; } MemBuf;

static void write_to_memory(void *ctx, void *data, int size) {
    MemBuf *m = ctx;
    if (m->len + (size_t)size > m->cap) m->p = xrealloc(m->p, m->cap = 2 * (m->len + (size_t)size));
    memcpy(m->p + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

unsigned char *png_grid_encode(const char *what, const float *imgs, int n, int c, int h, int w, int ncols, int pad,
                               int scale, float lo, float hi, int *len, int *width, int *height) {
    int64_t W, H;
    unsigned char *canvas = grid_canvas(what, imgs, n, c, h, w, ncols, pad, scale, lo, hi, &W, &H);
    MemBuf m = {0};
    int ok = stbi_write_png_to_func(write_to_memory, &m, (int)W, (int)H, c, canvas, (int)(W * c));
    free(canvas);
    if (!ok || m.len > INT32_MAX) ddm_fatal("%s: PNG encoding failed", what);
    *len = (int)m.len;
    unsigned char *png = m.p;
    *width = (int)W;
    *height = (int)H;
    return png;
}

void png_write_grid(const char *path, const float *imgs, int n, int c, int h, int w, int ncols, int pad, int scale,
                    float lo, float hi) {
    int64_t W, H;
    unsigned char *canvas = grid_canvas(path, imgs, n, c, h, w, ncols, pad, scale, lo, hi, &W, &H);
    AtomicFile af = atomic_open(path);
    int ok = stbi_write_png_to_func(write_to_file, af.f, (int)W, (int)H, c, canvas, (int)(W * c));
    free(canvas);
    if (!ok) {
        atomic_abort(&af);
        ddm_fatal("%s: PNG encoding failed", path);
    }
    atomic_commit(&af);
}

// ---------------------------------------------------------------------------------------------
// Reading

static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t be32(const unsigned char *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | b[2] << 8 | b[3]; }

// Walks the chunks: each is length, type, data, CRC-32 of type + data; the first is IHDR, the last IEND.
static void check_chunks(const unsigned char *b, size_t size, const char *path) {
    if (size < 8 || memcmp(b, png_signature, 8) != 0) ddm_fatal("%s: not a readable PNG: bad signature", path);
    size_t p = 8;
    for (int first = 1;; first = 0) {
        if (size - p < 12)
            ddm_fatal("%s: not a readable PNG: truncated after %zu bytes (no IEND chunk)", path, size);
        uint32_t len = be32(b + p);
        const unsigned char *type = b + p + 4;
        if (len > size - p - 12)
            ddm_fatal("%s: not a readable PNG: truncated: chunk '%.4s' of %u bytes at offset %zu runs past the end of "
                      "the file (%zu bytes)", path, (const char *)type, len, p, size);
        uint32_t crc = (uint32_t)crc32(crc32(0, NULL, 0), type, len + 4);
        if (crc != be32(type + 4 + len))
            ddm_fatal("%s: not a readable PNG: CRC-32 mismatch in chunk '%.4s' at offset %zu (corrupt file)", path,
                      (const char *)type, p);
        if (first && memcmp(type, "IHDR", 4) != 0)
            ddm_fatal("%s: not a readable PNG: the first chunk is '%.4s', not IHDR", path, (const char *)type);
        if (memcmp(type, "IEND", 4) == 0) return;
        p += 12 + (size_t)len;
    }
}

int png_check_declared_size(const unsigned char *b, size_t size, char *err, size_t cap) {
    if (size < 33 || memcmp(b + 12, "IHDR", 4) != 0) { snprintf(err, cap, "no IHDR chunk"); return -1; }
    uint64_t W = be32(b + 16), H = be32(b + 20), depth = b[24], type = b[25];
    int channels = type == 0 ? 1 : type == 2 ? 3 : type == 3 ? 1 : type == 4 ? 2 : type == 6 ? 4 : 0;
    if (!channels || !depth) { snprintf(err, cap, "IHDR colour type %d, bit depth %d is not valid PNG", (int)type, (int)depth); return -1; }
    if (W == 0 || H == 0 || W * H > ((uint64_t)1 << 28) /* data/image.h IMAGE_MAX_PIXELS */) {
        snprintf(err, cap, "IHDR declares %llux%llu pixels (ddm decodes 1 to 2^28)", (unsigned long long)W, (unsigned long long)H);
        return -1;
    }
    uint64_t idat = 0;
    for (size_t p = 8; p + 12 <= size;) {
        uint32_t len = be32(b + p);
        if (len > size - p - 12) break;
        if (!memcmp(b + p + 4, "IDAT", 4)) idat += len;
        p += 12 + (size_t)len;
    }
    uint64_t raw = H * ((W * (uint64_t)channels * depth + 7) / 8);   // without the filter bytes: a lower bound
    if (raw > 1040 * idat + 4096) {
        snprintf(err, cap, "IHDR declares %llux%llu pixels (%llu bytes) but the %llu bytes of IDAT data cannot hold them",
                 (unsigned long long)W, (unsigned long long)H, (unsigned long long)raw, (unsigned long long)idat);
        return -1;
    }
    return 0;
}

unsigned char *png_read(const char *path, int *w, int *h, int *comp) {
    FILE *f = xfopen(path, "rb");
    unsigned char *b = NULL;
    size_t size = 0, cap = 0, k;
    do {
        if (size == cap) b = xrealloc(b, cap = cap ? 2 * cap : 1 << 16);
        size += k = fread(b + size, 1, cap - size, f);
    } while (k > 0);
    if (ferror(f)) ddm_fatal("%s: read error", path);
    fclose(f);
    check_chunks(b, size, path);
    char err[300];
    if (png_check_declared_size(b, size, err, sizeof err)) ddm_fatal("%s: not a readable PNG: %s", path, err);
    if (size > INT32_MAX) ddm_fatal("%s: PNG file too large", path);
    unsigned char *px = stbi_load_from_memory(b, (int)size, w, h, comp, 0);
    free(b);
    if (!px) ddm_fatal("%s: not a readable PNG (%s)", path, stbi_failure_reason());
    size_t n = (size_t)*w * *h * *comp;
    unsigned char *out = xmalloc(n);
    memcpy(out, px, n);
    stbi_image_free(px);
    return out;
}
