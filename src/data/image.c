// PNG (libpng) and JPEG (libjpeg) decoding and ADM's centre crop (PIL's resampling), without exiting:
// errors come back as one line naming the file (image.h).
#include "data/image.h"
#include "io/png.h"
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <zlib.h>

// Image files above this size are refused before they are read into memory.
#define IMAGE_MAX_FILE_BYTES ((long)1 << 30)

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int fail(char *err, size_t cap, const char *path, const char *fmt, const char *detail) {
    char what[512];
    snprintf(what, sizeof what, fmt, detail ? detail : "");
    snprintf(err, cap, "%s: %s", path, what);
    return -1;
}

// The whole file in memory (malloc'd); -1 if it cannot be read or is implausibly large.
static int read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, cap, path, "cannot open: %s", strerror(errno));
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return fail(err, cap, path, "cannot read: %s", strerror(errno)); }
    if (n > IMAGE_MAX_FILE_BYTES) { fclose(f); return fail(err, cap, path, "larger than 1 GiB: not read as an image%s", ""); }
    *buf = malloc(n ? (size_t)n : 1);
    if (!*buf) { fclose(f); return fail(err, cap, path, "out of memory reading it%s", ""); }
    size_t got = fread(*buf, 1, (size_t)n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != (size_t)n) { free(*buf); return fail(err, cap, path, "read error%s", ""); }
    *len = (size_t)n;
    return 0;
}

static int kind_of(const unsigned char *b, size_t n) {
    if (n >= 8 && memcmp(b, png_sig, 8) == 0) return IMAGE_PNG;
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return IMAGE_JPEG;
    return 0;
}

static int not_an_image(const char *path, const unsigned char *b, size_t n, char *err, size_t cap) {
    if (n == 0) return fail(err, cap, path, "empty file: expected a PNG or JPEG image%s", "");
    char hex[40] = "";
    for (size_t i = 0; i < n && i < 8; i++) snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%s%02x", i ? " " : "", b[i]);
    return fail(err, cap, path, "not a PNG or JPEG image (it starts with bytes %s)", hex);
}

// ---------------------------------------------------------------------------------------------
// JPEG (libjpeg): errors and the one warning that means a truncated file jump back to the caller.

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX + 32];
} JpegErr;

static void jpeg_on_error(j_common_ptr c) {
    JpegErr *e = (JpegErr *)c->err;
    char m[JMSG_LENGTH_MAX];
    (*c->err->format_message)(c, m);
    snprintf(e->msg, sizeof e->msg, "corrupt JPEG: %.180s", m);
    longjmp(e->jmp, 1);
}

static void jpeg_on_message(j_common_ptr c, int level) {
    // libjpeg pads a file that ends early with a fake end marker and only warns: a grey or smeared tail.
    if (level == -1 && c->err->msg_code == JWRN_JPEG_EOF) {
        JpegErr *e = (JpegErr *)c->err;
        snprintf(e->msg, sizeof e->msg, "truncated JPEG (the data end before the image does)");
        longjmp(e->jmp, 1);
    }
}

static int jpeg_comp(const struct jpeg_decompress_struct *j, const char *path, char *err, size_t cap) {
    if (j->jpeg_color_space == JCS_GRAYSCALE) return 1;
    if (j->jpeg_color_space == JCS_CMYK || j->jpeg_color_space == JCS_YCCK)
        return fail(err, cap, path, "a CMYK JPEG: not supported (convert it to RGB)%s", "");
    return 3;
}

static void jpeg_setup_errors(struct jpeg_decompress_struct *j, JpegErr *e) {
    j->err = jpeg_std_error(&e->mgr);
    e->mgr.error_exit = jpeg_on_error;
    e->mgr.emit_message = jpeg_on_message;
}

static int jpeg_probe(const char *path, int *w, int *h, int *comp, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, cap, path, "cannot open: %s", strerror(errno));
    struct jpeg_decompress_struct j;
    JpegErr e;
    jpeg_setup_errors(&j, &e);
    if (setjmp(e.jmp)) {
        jpeg_destroy_decompress(&j);
        fclose(f);
        return fail(err, cap, path, "%s", e.msg);
    }
    jpeg_create_decompress(&j);
    jpeg_stdio_src(&j, f);
    jpeg_read_header(&j, TRUE);
    *w = (int)j.image_width;
    *h = (int)j.image_height;
    *comp = jpeg_comp(&j, path, err, cap);
    jpeg_destroy_decompress(&j);
    fclose(f);
    return *comp < 0 ? -1 : 0;
}

static int jpeg_decode(const char *path, const unsigned char *buf, size_t len, unsigned char **px, int *w, int *h,
                       int *comp, char *err, size_t cap) {
    struct jpeg_decompress_struct j;
    JpegErr e;
    unsigned char *volatile out = NULL;
    jpeg_setup_errors(&j, &e);
    if (setjmp(e.jmp)) {
        jpeg_destroy_decompress(&j);
        free(out);
        return fail(err, cap, path, "%s", e.msg);
    }
    jpeg_create_decompress(&j);
    jpeg_mem_src(&j, buf, (unsigned long)len);
    jpeg_read_header(&j, TRUE);
    int c = jpeg_comp(&j, path, err, cap);
    if (c < 0) { jpeg_destroy_decompress(&j); return -1; }
    if ((long long)j.image_width * j.image_height > IMAGE_MAX_PIXELS) {
        jpeg_destroy_decompress(&j);
        return fail(err, cap, path, "%s pixels: larger than ddm decodes (2^28)", "");
    }
    j.out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&j);
    size_t stride = (size_t)j.output_width * c;
    out = malloc(stride * j.output_height);
    if (!out) { jpeg_destroy_decompress(&j); return fail(err, cap, path, "out of memory decoding it%s", ""); }
    while (j.output_scanline < j.output_height) {
        JSAMPROW row = out + stride * j.output_scanline;
        jpeg_read_scanlines(&j, &row, 1);
    }
    jpeg_finish_decompress(&j);
    *w = (int)j.output_width;
    *h = (int)j.output_height;
    *comp = c;
    *px = out;
    jpeg_destroy_decompress(&j);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// PNG (libpng, from memory; CRCs checked by libpng, a missing end is "truncated")

typedef struct { const unsigned char *p; size_t len, pos; char msg[256]; jmp_buf jmp; } PngIo;

static void png_on_error(png_structp png, png_const_charp msg) {
    PngIo *io = png_get_error_ptr(png);
    if (!io->msg[0]) snprintf(io->msg, sizeof io->msg, "corrupt PNG: %s", msg);
    longjmp(io->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_from_memory(png_structp png, png_bytep dst, size_t n) {
    PngIo *io = png_get_io_ptr(png);
    if (n > io->len - io->pos) {
        snprintf(io->msg, sizeof io->msg, "truncated PNG (the file ends after %zu bytes, inside the image data or "
                 "before its IEND chunk)", io->len);
        longjmp(io->jmp, 1);
    }
    memcpy(dst, io->p + io->pos, n);
    io->pos += n;
}

static int png_comp_of_type(int color_type) {
    return color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 1 : 3;
}

// The IHDR chunk is always first (PNG spec 11.2.2): its fields and CRC are enough to probe.
static int png_probe(const char *path, const unsigned char *b, size_t n, int *w, int *h, int *comp, char *err,
                     size_t cap) {
    if (n < 33 || be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
        return fail(err, cap, path, "corrupt PNG: no IHDR chunk after the signature (truncated?)%s", "");
    if ((uint32_t)crc32(0, b + 12, 17) != be32(b + 29)) return fail(err, cap, path, "corrupt PNG: IHDR CRC mismatch%s", "");
    uint32_t W = be32(b + 16), H = be32(b + 20);
    if (W == 0 || H == 0 || W > (1u << 24) || H > (1u << 24) || (long long)W * H > IMAGE_MAX_PIXELS)
        return fail(err, cap, path, "PNG header gives a size ddm does not decode (0, or above 2^28 pixels)%s", "");
    *w = (int)W;
    *h = (int)H;
    *comp = png_comp_of_type(b[25]);
    return 0;
}

static int png_decode(const char *path, const unsigned char *buf, size_t len, unsigned char **px, int *w, int *h,
                      int *comp, char *err, size_t cap) {
    int pw, ph, pc;
    if (png_probe(path, buf, len, &pw, &ph, &pc, err, cap) != 0) return -1;
    char why[300];
    if (png_check_declared_size(buf, len, why, sizeof why) != 0) return fail(err, cap, path, "corrupt PNG: %s", why);
    PngIo io;
    memset(&io, 0, sizeof io);
    io.p = buf;
    io.len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return fail(err, cap, path, "out of memory decoding it%s", "");
    }
    unsigned char *volatile out = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(io.jmp)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(out);
        free(rows);
        return fail(err, cap, path, "%s", io.msg);
    }
    png_set_read_fn(png, &io, png_from_memory);
    png_read_info(png, info);
    int bit_depth = png_get_bit_depth(png, info), color_type = png_get_color_type(png, info);
    // PIL's convert("RGB") / ("L"): palettes expanded, 16 bits to 8 (the high byte, as stb_image in io/png.c: docs/data.md
    // says 16-bit PNGs are accepted this way), alpha (and tRNS) dropped, no gamma.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    if (c != pc) png_error(png, "unexpected channel count after conversion");
    size_t stride = (size_t)pw * c;
    out = malloc(stride * ph);
    rows = malloc(sizeof(png_bytep) * ph);
    if (!out || !rows) png_error(png, "out of memory");
    for (int y = 0; y < ph; y++) rows[y] = out + stride * y;
    png_read_image(png, rows);
    png_read_end(png, NULL);   // the chunks after the image data: their CRCs and the IEND
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *px = out;
    *w = pw;
    *h = ph;
    *comp = c;
    return 0;
}

// ---------------------------------------------------------------------------------------------

int image_probe(const char *path, int *kind, int *w, int *h, int *comp, char *err, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, cap, path, "cannot open: %s", strerror(errno));
    unsigned char b[33];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    *kind = kind_of(b, n);
    if (*kind == IMAGE_PNG) return png_probe(path, b, n, w, h, comp, err, cap);
    if (*kind == IMAGE_JPEG) return jpeg_probe(path, w, h, comp, err, cap);
    return not_an_image(path, b, n, err, cap);
}

int image_decode(const char *path, unsigned char **px, int *w, int *h, int *comp, char *err, size_t cap) {
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len, err, cap) != 0) return -1;
    int k = kind_of(buf, len), r;
    if (k == IMAGE_PNG) r = png_decode(path, buf, len, px, w, h, comp, err, cap);
    else if (k == IMAGE_JPEG) r = jpeg_decode(path, buf, len, px, w, h, comp, err, cap);
    else r = not_an_image(path, buf, len, err, cap);
    free(buf);
    return r;
}

// ---------------------------------------------------------------------------------------------
// ADM's center_crop_arr, with PIL's resampling reproduced bit for bit (Pillow's Resample.c: separable
// convolution, coefficients normalised to 22-bit fixed point, the horizontal pass first into 8-bit rows,
// then the vertical pass). stb_image_resize was tried first: its box filter weighs the pixels under a
// non-integer window differently from PIL's and gave up to 25 levels of difference on odd-sized images
// (e.g. 65 x 130 -> 32 x 65); with PIL's arithmetic the crops equal ADM's exactly (tests/cli/test_data.sh).

#define PIL_PRECISION_BITS (32 - 8 - 2)

static double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double bicubic_filter(double x) {   // a = -0.5
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

typedef struct { double (*f)(double); double support; } PilFilter;

// Per output position: the first input index, the count, and ksize fixed-point weights.
static int pil_coeffs(int in_size, int out_size, PilFilter flt, int **bounds, int32_t **kk) {
    double scale = (double)in_size / out_size, filterscale = scale < 1 ? 1 : scale;
    double support = flt.support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    *bounds = malloc(sizeof(int) * 2 * out_size);
    *kk = malloc(sizeof(int32_t) * ksize * out_size);
    double *k = malloc(sizeof(double) * ksize);
    if (!*bounds || !*kk || !k) { free(k); return -1; }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) ww += k[x] = flt.f((x + xmin - center + 0.5) * ss);
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax && ww != 0 ? k[x] / ww : x < xmax ? k[x] : 0;
            (*kk)[xx * ksize + x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PIL_PRECISION_BITS) : 0.5 + v * (1 << PIL_PRECISION_BITS));
        }
        (*bounds)[2 * xx] = xmin;
        (*bounds)[2 * xx + 1] = xmax;
    }
    free(k);
    return ksize;
}

static unsigned char clip8(int64_t v) {
    v >>= PIL_PRECISION_BITS;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// PIL's Image.resize((dw, dh), filter) of an 8-bit image with comp channels.
static int pil_resize(const unsigned char *src, int sw, int sh, unsigned char *dst, int dw, int dh, int comp,
                      PilFilter flt) {
    int *bx = NULL, *by = NULL;
    int32_t *kx = NULL, *ky = NULL;
    int kxs = pil_coeffs(sw, dw, flt, &bx, &kx), kys = pil_coeffs(sh, dh, flt, &by, &ky);
    unsigned char *tmp = malloc((size_t)dw * sh * comp);
    int ok = kxs > 0 && kys > 0 && tmp;
    for (int y = 0; ok && y < sh; y++)   // horizontal pass, rounded to 8 bits as PIL stores it
        for (int xx = 0; xx < dw; xx++) {
            const int32_t *k = kx + xx * kxs;
            for (int c = 0; c < comp; c++) {
                int64_t acc = 1 << (PIL_PRECISION_BITS - 1);
                for (int x = 0; x < bx[2 * xx + 1]; x++)
                    acc += (int64_t)src[((size_t)y * sw + bx[2 * xx] + x) * comp + c] * k[x];
                tmp[((size_t)y * dw + xx) * comp + c] = clip8(acc);
            }
        }
    for (int yy = 0; ok && yy < dh; yy++) {   // vertical pass
        const int32_t *k = ky + yy * kys;
        for (int xx = 0; xx < dw; xx++)
            for (int c = 0; c < comp; c++) {
                int64_t acc = 1 << (PIL_PRECISION_BITS - 1);
                for (int y = 0; y < by[2 * yy + 1]; y++)
                    acc += (int64_t)tmp[((size_t)(by[2 * yy] + y) * dw + xx) * comp + c] * k[y];
                dst[((size_t)yy * dw + xx) * comp + c] = clip8(acc);
            }
    }
    free(bx); free(by); free(kx); free(ky); free(tmp);
    return ok ? 0 : -1;
}

int image_center_crop_arr(const unsigned char *src, int w, int h, int comp, int size, unsigned char *dst) {
    const PilFilter box = {box_filter, 0.5}, bicubic = {bicubic_filter, 2.0};
    unsigned char *cur = NULL;   // owned intermediate; src while NULL
    const unsigned char *in = src;
    while ((w < h ? w : h) >= 2 * size) {
        int nw = w / 2, nh = h / 2;
        unsigned char *next = malloc((size_t)nw * nh * comp);
        if (!next || pil_resize(in, w, h, next, nw, nh, comp, box) != 0) { free(next); free(cur); return -1; }
        free(cur);
        in = cur = next;
        w = nw;
        h = nh;
    }
    double scale = (double)size / (w < h ? w : h);
    int nw = (int)nearbyint(w * scale), nh = (int)nearbyint(h * scale);   // round half to even, as Python
    if (nw != w || nh != h) {   // PIL returns a copy for the same size
        unsigned char *next = malloc((size_t)nw * nh * comp);
        if (!next || pil_resize(in, w, h, next, nw, nh, comp, bicubic) != 0) { free(next); free(cur); return -1; }
        free(cur);
        in = cur = next;
        w = nw;
        h = nh;
    }
    int y0 = (h - size) / 2, x0 = (w - size) / 2;
    for (int y = 0; y < size; y++)
        memcpy(dst + (size_t)y * size * comp, in + ((size_t)(y0 + y) * w + x0) * comp, (size_t)size * comp);
    free(cur);
    return 0;
}
