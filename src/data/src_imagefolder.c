// ImageFolder trees (torchvision's layout, which ADM/DiT/SiT train from): one sub-folder per class,
// classes in sorted name order, every .png/.jpg/.jpeg below a class folder (any depth, os.walk order)
// is a sample of it. DIR/train + DIR/val (or DIR/test) are the two splits when both exist.
//
// Opening lists the tree and reads every file's header (size, grey or colour), so a non-image, an
// unreadable file, an empty class or mixed sizes without --image-size fail before any training. Pixels are
// decoded when read; preprocessed images are cached up to --data-cache-mb. When the whole split fits the
// cache it is decoded at open (in parallel), which also checks every file to its end.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "data/data_impl.h"
#include "data/idx.h"
#include "data/image.h"

typedef struct {
    char *root;
    char **files;            // [n] paths below root, "class/.../name.jpg"
    int32_t *fw, *fh;        // [n] sizes from the header scan
    int8_t *fc;              // [n] channels from the header scan (1 or 3)
    int size;                // --image-size (0: none, the images all have d->h x d->w)
    pthread_mutex_t mu;      // guards the cache
    unsigned char **cache;   // [n] preprocessed h x w x c bytes, or NULL
    uint64_t cache_bytes, cache_limit;
} Folder;

static int is_image_name(const char *name) {
    return data_has_suffix(name, ".png") || data_has_suffix(name, ".jpg") || data_has_suffix(name, ".jpeg");
}

// Files skipped while listing, for the one warning line.
typedef struct { int n; char *names[5]; } Skipped;

static void skip(Skipped *s, const char *rel) {
    if (s->n < 5) s->names[s->n] = xstrdup(rel);
    s->n++;
}

typedef struct { char **v; int64_t n, cap; } StrList;

static void push(StrList *l, char *s) {
    if (l->n == l->cap) l->v = xrealloc(l->v, (size_t)(l->cap = l->cap ? 2 * l->cap : 256) * sizeof(char *));
    l->v[l->n++] = s;
}

// Every image below root/rel in torchvision's order: the directories as sorted(os.walk) visits them (by
// their path as a string), the files of each in sorted order. Returns paths relative to root.
static void walk(const char *root, const char *rel, StrList *dirs) {
    push(dirs, xstrdup(rel));
    char *full = data_join(root, rel);
    int n;
    char **subs = data_list_dir(full, 'd', &n);
    for (int i = 0; i < n; i++) {
        char *r = data_join(rel, subs[i]);
        walk(root, r, dirs);
        free(r);
    }
    data_free_list(subs);
    free(full);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_class(const char *root, const char *cls, StrList *files, Skipped *sk) {
    StrList dirs = {0};
    walk(root, cls, &dirs);
    qsort(dirs.v, (size_t)dirs.n, sizeof(char *), cmp_str);
    int64_t before = files->n;
    for (int64_t d = 0; d < dirs.n; d++) {
        char *full = data_join(root, dirs.v[d]);
        int n;
        char **names = data_list_dir(full, 'f', &n);
        for (int i = 0; i < n; i++) {
            char *rel = data_join(dirs.v[d], names[i]);
            if (is_image_name(names[i]) && names[i][0] != '.') push(files, rel);
            else { skip(sk, rel); free(rel); }
        }
        data_free_list(names);
        free(full);
        free(dirs.v[d]);
    }
    free(dirs.v);
    if (files->n == before)
        ddm_fatal("%s/%s: empty class folder (no .png, .jpg or .jpeg files below it); remove it or add images, since "
                  "the class numbering follows the folders", root, cls);
}

// DIR/train holding class folders (and no images of its own) plus DIR/val or DIR/test: a split layout.
static char *split_root(const char *path, const char *split, int whole_ok, char *got) {
    char *train = data_join(path, "train");
    int layout = 0;
    if (data_is_dir(train)) {
        int nd, nf, images = 0;
        char **d = data_list_dir(train, 'd', &nd), **f = data_list_dir(train, 'f', &nf);
        for (int i = 0; i < nf; i++) images |= is_image_name(f[i]);
        layout = nd > 0 && !images;
        data_free_list(d);
        data_free_list(f);
    }
    if (layout) {
        strcpy(got, split);
        if (!strcmp(split, "train")) return train;
        free(train);
        const char *tests[2] = {"val", "test"};
        for (int k = 0; k < 2; k++) {
            char *t = data_join(path, tests[k]);
            if (data_is_dir(t)) return t;
            free(t);
        }
        ddm_fatal("--data %s: has a train/ folder but no val/ or test/ folder for the test split", path);
    }
    free(train);
    if (strcmp(split, "train") && !whole_ok)
        ddm_fatal("--data %s: an ImageFolder without train/ and val/ (or test/) sub-folders has one split; give the "
                  "test images with --test-data DIR", path);
    strcpy(got, "all");
    return xstrdup(path);
}

// The preprocessed image (h x w x c bytes, malloc'd) of file i.
static unsigned char *load(const DataSource *d, const Folder *f, int64_t i, char *err, size_t cap) {
    char *path = data_join(f->root, f->files[i]);
    unsigned char *px;
    int w, h, comp;
    int r = image_decode(path, &px, &w, &h, &comp, err, cap);
    if (r == 0 && (w != f->fw[i] || h != f->fh[i] || comp != f->fc[i])) {
        snprintf(err, cap, "%s: now %dx%d with %d channel(s), but %dx%d with %d when the dataset was opened", path, w, h,
                 comp, f->fw[i], f->fh[i], f->fc[i]);
        free(px);
        r = -1;
    }
    free(path);
    if (r != 0) return NULL;
    if (f->size) {
        unsigned char *crop = malloc((size_t)f->size * f->size * comp);
        if (!crop || image_center_crop_arr(px, w, h, comp, f->size, crop) != 0) {
            snprintf(err, cap, "%s/%s: out of memory resizing it", f->root, f->files[i]);
            free(crop);
            free(px);
            return NULL;
        }
        free(px);
        px = crop;
    }
    if (comp == d->c) return px;
    size_t hw = (size_t)d->h * d->w;   // a grey image in a colour dataset: grey copied to R, G and B (PIL's convert)
    unsigned char *rgb = malloc(hw * 3);
    if (!rgb) { snprintf(err, cap, "%s/%s: out of memory", f->root, f->files[i]); free(px); return NULL; }
    for (size_t p = 0; p < hw; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = px[p];
    free(px);
    return rgb;
}

static void to_float(const DataSource *d, const unsigned char *px, float *dst) {
    size_t hw = (size_t)d->h * d->w;
    for (int c = 0; c < d->c; c++)
        for (size_t p = 0; p < hw; p++) dst[c * hw + p] = idx_pixel(px[p * d->c + c]);
}

static int folder_read(DataSource *d, int64_t i, float *dst, char *err, size_t cap) {
    Folder *f = d->impl;
    pthread_mutex_lock(&f->mu);
    const unsigned char *hit = f->cache[i];
    pthread_mutex_unlock(&f->mu);
    if (hit) { to_float(d, hit, dst); return 0; }   // cached entries are never freed before close
    unsigned char *px = load(d, f, i, err, cap);
    if (!px) return -1;
    to_float(d, px, dst);
    uint64_t bytes = (uint64_t)d->c * d->h * d->w;
    int kept = 0;
    pthread_mutex_lock(&f->mu);
    if (!f->cache[i] && f->cache_bytes + bytes <= f->cache_limit) {
        f->cache[i] = px;
        f->cache_bytes += bytes;
        kept = 1;
    }
    pthread_mutex_unlock(&f->mu);
    if (!kept) free(px);
    return 0;
}

static void folder_close(DataSource *d) {
    Folder *f = d->impl;
    for (int64_t i = 0; i < d->n; i++) { free(f->files[i]); free(f->cache[i]); }
    free(f->files); free(f->cache); free(f->fw); free(f->fh); free(f->fc); free(f->root);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

// Header scan of every file (parallel: it is mostly waiting for the disk); fatal on the first bad file,
// saying how many others are bad too.
static void scan_headers(Folder *f, int64_t n) {
    int bad = 0;
    char first[1200] = "";
    #pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; i++) {
        char err[1200], *path = data_join(f->root, f->files[i]);
        int kind, w, h, c;
        int r = image_probe(path, &kind, &w, &h, &c, err, sizeof err);
        free(path);
        if (r == 0 && (long long)w * h > IMAGE_MAX_PIXELS) {
            snprintf(err, sizeof err, "%s/%s: %dx%d pixels, more than ddm decodes (2^28)", f->root, f->files[i], w, h);
            r = -1;
        }
        f->fw[i] = w; f->fh[i] = h; f->fc[i] = (int8_t)c;
        if (r != 0) {
            #pragma omp critical(folder_scan)
            { if (!bad++) snprintf(first, sizeof first, "%s", err); }
        }
    }
    if (bad > 1) ddm_fatal("%s (and %d more unreadable or non-image files)", first, bad - 1);
    if (bad) ddm_fatal("%s", first);
}

static void warn_skipped(const char *root, Skipped *sk) {
    if (!sk->n) return;
    fprintf(stderr, "ddm: warning: %s: skipped %d file%s that %s not .png/.jpg/.jpeg images:", root, sk->n,
            sk->n == 1 ? "" : "s", sk->n == 1 ? "is" : "are");
    for (int i = 0; i < sk->n && i < 5; i++) { fprintf(stderr, "%s %s", i ? "," : "", sk->names[i]); free(sk->names[i]); }
    if (sk->n > 5) fprintf(stderr, " and %d more", sk->n - 5);
    fprintf(stderr, "\n");
}

DataSource *data_open_imagefolder(const DataSpec *spec, const char *split, int whole_ok) {
    if (!data_is_dir(spec->path))
        ddm_fatal("--data %s: an ImageFolder is a directory with one sub-folder of images per class", spec->path);
    char got[8];
    char *root = split_root(spec->path, split, whole_ok, got);
    DataSource *d = data_source_new("imagefolder", root, got);
    Folder *f = xcalloc(1, sizeof *f);
    f->root = root;
    pthread_mutex_init(&f->mu, NULL);
    d->impl = f;
    d->read = folder_read;
    d->close = folder_close;
    Skipped sk = {0};
    int nall;
    char **entries = data_list_dir(root, 0, &nall);
    int ncls = 0;
    char **classes = xmalloc((size_t)(nall + 1) * sizeof(char *));
    for (int i = 0; i < nall; i++) {
        char *full = data_join(root, entries[i]);
        int dir = data_is_dir(full);
        free(full);
        if (dir && entries[i][0] != '.') classes[ncls++] = xstrdup(entries[i]);
        else skip(&sk, entries[i]);   // a file beside the class folders, or a hidden folder
    }
    data_free_list(entries);
    if (!ncls)
        ddm_fatal("--data %s: no class sub-folders (an ImageFolder holds one sub-folder of images per class)", root);
    StrList files = {0};
    int32_t *labels = NULL;
    for (int k = 0; k < ncls; k++) {
        int64_t before = files.n;
        list_class(root, classes[k], &files, &sk);
        labels = xrealloc(labels, (size_t)files.n * sizeof(int32_t));
        for (int64_t i = before; i < files.n; i++) labels[i] = k;
    }
    if (files.n > INT32_MAX) ddm_fatal("--data %s: %lld images: more than ddm indexes (2^31 - 1)", root, (long long)files.n);
    d->n = files.n;
    d->labels = labels;
    d->num_classes = ncls;
    d->classes_of_format = 1;
    d->class_names = classes;
    d->class_sorted = 1;
    f->files = files.v;
    f->fw = xmalloc((size_t)d->n * sizeof(int32_t));
    f->fh = xmalloc((size_t)d->n * sizeof(int32_t));
    f->fc = xmalloc((size_t)d->n);
    f->cache = xcalloc((size_t)d->n, sizeof(unsigned char *));
    scan_headers(f, d->n);
    d->c = 1;
    for (int64_t i = 0; i < d->n; i++) if (f->fc[i] == 3) d->c = 3;
    f->size = spec->image_size;
    if (f->size) {
        d->h = d->w = f->size;
    } else {
        d->h = f->fh[0];
        d->w = f->fw[0];
        for (int64_t i = 1; i < d->n; i++)
            if (f->fw[i] != d->w || f->fh[i] != d->h)
                ddm_fatal("%s/%s is %dx%d but %s/%s is %dx%d: the images differ in size; pass --image-size S to resize "
                          "and centre-crop them to S x S (ADM's preprocessing)", root, f->files[i], f->fw[i], f->fh[i],
                          root, f->files[0], d->w, d->h);
    }
    uint64_t per = data_mul((uint64_t)d->h * d->w, (uint64_t)d->c, (uint64_t)IMAGE_MAX_PIXELS * 3, root);
    f->cache_limit = (uint64_t)(spec->cache_mb > 0 ? spec->cache_mb : 0) << 20;
    int all_cached = data_mul(per, (uint64_t)d->n, UINT64_MAX / 2, root) <= f->cache_limit;
    if (spec->image_size)
        data_set_detail(d, "ADM's center_crop_arr to %dx%d (box halving, bicubic, centre crop), %s; "
                 "%s", f->size, f->size, d->c == 3 ? "RGB (grey images copied to 3 channels)" : "grey",
                 all_cached ? "decoded at open" : "decoded when read");
    else
        data_set_detail(d, "%s, %s", d->c == 3 ? "RGB (grey images copied to 3 channels)" : "grey",
                 all_cached ? "decoded at open" : "decoded when read");
    if (sk.n) {
        size_t k = strlen(d->detail);
        snprintf(d->detail + k, sizeof d->detail - k, "; %d non-image file%s skipped", sk.n, sk.n == 1 ? "" : "s");
    }
    warn_skipped(root, &sk);
    if (all_cached) {   // small enough: decode (and so check) everything now, in parallel
        int bad = 0;
        char first[1200] = "";
        #pragma omp parallel
        {
            float *buf = xmalloc(per * sizeof(float));
            #pragma omp for schedule(dynamic, 16)
            for (int64_t i = 0; i < d->n; i++) {
                char err[1200];
                if (folder_read(d, i, buf, err, sizeof err) != 0) {
                    #pragma omp critical(folder_decode)
                    { if (!bad++) snprintf(first, sizeof first, "%s", err); }
                }
            }
            free(buf);
        }
        if (bad > 1) ddm_fatal("%s (and %d more files that do not decode)", first, bad - 1);
        if (bad) ddm_fatal("%s", first);
    }
    return d;
}
