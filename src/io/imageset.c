#include "io/imageset.h"
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "io/npy.h"
#include "io/npz.h"
#include "io/png.h"

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static float u8_to_unit(float v) { return v / 127.5f - 1.0f; } // [0, 255] -> [-1, 1], as for PNGs

static const char *shape_str(const NpyArray *a, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < a->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

static int to_int(int64_t v, const char *what) {
    if (v == 0) ddm_fatal("%s: an empty image set (a dimension of 0): expected at least one image", what);
    if (v < 1 || v > (1 << 30)) ddm_fatal("%s: an image set cannot have a dimension of %lld", what, (long long)v);
    return (int)v;
}

// float (any dtype but uint8): [N, C, H, W] as is. uint8: [N, H, W, C] (C = 1 or 3, the ADM
// reference-batch layout) or [N, H, W], scaled from [0, 255] and transposed to [N, C, H, W].
static ImageSet from_array(NpyArray a, const char *what) {
    char shape[160];
    if (strcmp(a.descr, "|u1") != 0) {
        if (a.ndim != 4)
            ddm_fatal("%s: expected an array of images [N, C, H, W] (or uint8 [N, H, W, C]), got shape %s", what,
                      shape_str(&a, shape, sizeof shape));
        ImageSet s = {to_int(a.shape[0], what), to_int(a.shape[1], what), to_int(a.shape[2], what),
                      to_int(a.shape[3], what), a.data};
        return s;
    }
    if (a.ndim == 3) a.shape[a.ndim++] = 1;
    if (a.ndim != 4 || (a.shape[3] != 1 && a.shape[3] != 3))
        ddm_fatal("%s: uint8 images must be [N, H, W, C] with C = 1 or 3 (the ADM reference-batch layout) or [N, H, W], "
                  "got shape %s", what, shape_str(&a, shape, sizeof shape));
    ImageSet s = {to_int(a.shape[0], what), (int)a.shape[3], to_int(a.shape[1], what), to_int(a.shape[2], what), NULL};
    size_t hw = (size_t)s.h * s.w;
    s.images = xmalloc((size_t)s.n * s.c * hw * sizeof(float));
    for (size_t i = 0; i < (size_t)s.n; i++)
        for (int ch = 0; ch < s.c; ch++)
            for (size_t p = 0; p < hw; p++)
                s.images[(i * s.c + ch) * hw + p] = u8_to_unit(a.data[(i * hw + p) * s.c + ch]);
    npy_free(&a);
    return s;
}

static ImageSet load_png_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) ddm_fatal("cannot read the directory '%s'", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (ends_with(e->d_name, ".png")) {
            if (n == cap) names = xrealloc(names, (cap = cap ? 2 * cap : 256) * sizeof(char *));
            names[n++] = xstrdup(e->d_name);
        }
    closedir(d);
    if (!n) ddm_fatal("'%s' holds no .png files", dir);
    qsort(names, n, sizeof(char *), cmp_names);
    ImageSet s = {n, 0, 0, 0, NULL};
    char path[1200];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int w, h, comp;
        unsigned char *px = png_read(path, &w, &h, &comp);
        int c = comp >= 3 ? 3 : 1;   // grey(+alpha) -> 1 channel, RGB(A) -> 3; alpha dropped
        if (i == 0) {
            s.c = c; s.h = h; s.w = w;
            s.images = xmalloc((size_t)n * c * h * w * sizeof(float));
        } else if (c != s.c || h != s.h || w != s.w) {
            ddm_fatal("%s: %dx%dx%d, but %s/%s is %dx%dx%d: all images of a set must have one size", path, c, h, w,
                      dir, names[0], s.c, s.h, s.w);
        }
        float *dst = s.images + (size_t)i * c * h * w;
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < h * w; p++) dst[(size_t)ch * h * w + p] = u8_to_unit(px[(size_t)p * comp + ch]);
        free(px);
        free(names[i]);
    }
    free(names);
    return s;
}

// "FILE.npz:NAME" (when no file has that whole name): the array NAME of FILE.npz.
static int is_npz_member(const char *path) {
    const char *colon = strrchr(path, ':');
    return colon && colon - path >= 4 && strncasecmp(colon - 4, ".npz", 4) == 0;
}

// member NULL: the archive's default. Messages name the member as "path:name.npy".
static ImageSet load_npz(const char *path, const char *member) {
    char what[1200];
    NpyArray a = npz_load_f32(path, member, what, sizeof what);
    return from_array(a, what);
}

static ImageSet load_npz_member(const char *spec) {
    char *path = xstrdup(spec), *colon = strrchr(path, ':');
    *colon = '\0';
    if (!file_exists(path)) ddm_fatal("'%s' does not exist (nor does '%s')", spec, path);
    ImageSet s = load_npz(path, colon + 1);
    free(path);
    return s;
}

// NaN or Inf pixels would go through the feature network into finite-looking statistics (max-pooling and ReLU drop
// NaNs): a score computed from them means nothing, so such a set is refused, naming the first bad value.
static ImageSet check_finite(ImageSet s, const char *path) {
    size_t per = (size_t)s.c * s.h * s.w;
    for (size_t i = 0; i < (size_t)s.n * per; i++)
        if (!isfinite(s.images[i]))
            ddm_fatal("%s: image %zu holds %g at value %zu: expected finite pixel values in [-1, 1]", path, i / per,
                      s.images[i], i % per);
    return s;
}

static ImageSet load_any(const char *path);

ImageSet imageset_load(const char *path) { return check_finite(load_any(path), path); }

static ImageSet load_any(const char *path) {
    struct stat st;
    int exists = stat(path, &st) == 0;
    if (!exists && is_npz_member(path)) return load_npz_member(path);
    if (!exists) ddm_fatal("'%s' does not exist", path);
    if (S_ISDIR(st.st_mode)) return load_png_dir(path);
    if (ends_with(path, ".npy")) return from_array(npy_load_f32(path), path);
    if (ends_with(path, ".npz")) return load_npz(path, NULL);
    ddm_fatal("%s: expected a .npy or .npz array of images or a directory of PNG files", path);
}

void imageset_free(ImageSet *s) {
    free(s->images);
    s->images = NULL;
}
