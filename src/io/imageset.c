#include "io/imageset.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "io/npy.h"
#include "io/png.h"

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ImageSet load_npy(const char *path) {
    NpyArray a = npy_load_f32(path);
    if (a.ndim != 4) ddm_fatal("%s: expected an array of images [N, C, H, W], got %d dimensions", path, a.ndim);
    ImageSet s = {(int)a.shape[0], (int)a.shape[1], (int)a.shape[2], (int)a.shape[3], a.data};
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
            for (int p = 0; p < h * w; p++) dst[(size_t)ch * h * w + p] = px[(size_t)p * comp + ch] / 127.5f - 1.0f;
        free(px);
        free(names[i]);
    }
    free(names);
    return s;
}

ImageSet imageset_load(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) ddm_fatal("'%s' does not exist", path);
    if (S_ISDIR(st.st_mode)) return load_png_dir(path);
    if (ends_with(path, ".npy")) return load_npy(path);
    ddm_fatal("%s: expected a .npy array [N, C, H, W] or a directory of PNG files", path);
}

void imageset_free(ImageSet *s) {
    free(s->images);
    s->images = NULL;
}
