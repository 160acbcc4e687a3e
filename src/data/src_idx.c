// IDX datasets (MNIST, Fashion-MNIST, KMNIST, EMNIST, ...): a directory holding
// <prefix>{train,t10k|test}-images-idx3-ubyte[.gz] with matching *-labels-idx1-ubyte[.gz], or one images
// file named directly. Any count, any image size; the classes are the labels found (max + 1).
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "data/data_impl.h"
#include "data/idx.h"

typedef struct { IdxImages im; } IdxSource;

static int idx_read(DataSource *d, int64_t i, float *dst, char *err, size_t cap) {
    (void)err; (void)cap;
    const IdxSource *s = d->impl;
    size_t per = (size_t)d->h * d->w;
    const unsigned char *px = s->im.pixels + (size_t)i * per;
    for (size_t p = 0; p < per; p++) dst[p] = idx_pixel(px[p]);
    return 0;
}

static void idx_close(DataSource *d) {
    IdxSource *s = d->impl;
    idx_images_close(&s->im);
    free(s);
}

// "name" with every "from" replaced by "to" (malloc'd).
static char *replace_all(const char *name, const char *from, const char *to) {
    size_t n = strlen(name) + 1, lf = strlen(from), lt = strlen(to);
    for (const char *p = strstr(name, from); p; p = strstr(p + lf, from)) n += lt;
    char *out = xmalloc(n), *o = out;
    for (const char *p = name;;) {
        const char *q = strstr(p, from);
        if (!q) { strcpy(o, p); break; }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, lt);
        o += lt;
        p = q + lf;
    }
    return out;
}

// path itself, or path without / with ".gz", whichever exists first (raw before compressed); NULL if none.
static char *existing_variant(const char *path) {
    if (file_exists(path)) return xstrdup(path);
    size_t n = strlen(path);
    char *p = xmalloc(n + 4);
    if (data_has_suffix(path, ".gz")) {
        memcpy(p, path, n - 3);
        p[n - 3] = 0;
    } else {
        snprintf(p, n + 4, "%s.gz", path);
    }
    if (file_exists(p)) return p;
    free(p);
    return NULL;
}

static const char *base_name(const char *p) { return strrchr(p, '/') ? strrchr(p, '/') + 1 : p; }

// The images file of `split` beside a file named for another split ("train" -> "t10k" or "test").
static char *sibling_split(const char *images, const char *split) {
    const char *to[2] = {"t10k", "test"};
    for (int k = 0; k < 2; k++) {
        char *cand = strcmp(split, "test") == 0 ? replace_all(images, "train", to[k]) : replace_all(images, to[k], "train");
        char *found = strcmp(cand, images) ? existing_variant(cand) : NULL;
        free(cand);
        if (found) return found;
    }
    return NULL;
}

// The images file for split, and the split it really is ("all" if it names none).
static char *find_images(const char *path, const char *split, int whole_ok, char *got_split) {
    if (!data_is_dir(path)) {
        const char *named = data_split_of_name(base_name(path));
        if (named && strcmp(named, split) == 0) { strcpy(got_split, split); return xstrdup(path); }
        if (named) {
            char *sib = sibling_split(path, split);
            if (sib) { strcpy(got_split, split); return sib; }
        }
        if (!whole_ok)
            ddm_fatal("--data %s: no IDX images file for the %s split beside it (a 'train' name with 't10k' or 'test' "
                      "in its place); give one with --test-data", path, split);
        strcpy(got_split, named ? named : "all");
        return xstrdup(path);
    }
    int n;
    char **names = data_list_dir(path, 'f', &n);
    char *hit = NULL, *lone = NULL, found[600] = "";
    int hits = 0, images = 0;
    for (int i = 0; i < n; i++) {
        const char *e = names[i];
        if (!strstr(e, "images") || !strstr(e, "idx3-ubyte")) continue;
        if (data_has_suffix(e, ".gz")) {   // x.gz beside x: the same file, read raw
            char raw[512];
            snprintf(raw, sizeof raw, "%.*s", (int)strlen(e) - 3, e);
            int dup = 0;
            for (int j = 0; j < n; j++) dup |= !strcmp(names[j], raw);
            if (dup) continue;
        }
        images++;
        snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s", found[0] ? ", " : "", e);
        const char *named = data_split_of_name(e);
        if (!named) { free(lone); lone = data_join(path, e); }
        else if (!strcmp(named, split)) { hits++; free(hit); hit = data_join(path, e); }
    }
    data_free_list(names);
    if (hits > 1)
        ddm_fatal("--data %s: holds several IDX images files for the %s split (%s); pass one of them as --data", path,
                  split, found);
    if (hits == 1) { free(lone); strcpy(got_split, split); return hit; }
    if (lone && images == 1 && (whole_ok || !strcmp(split, "train"))) { strcpy(got_split, "all"); return lone; }
    free(lone);
    if (!strcmp(path, DDM_FASHION_MNIST_DIR))
        ddm_fatal("missing Fashion-MNIST %s images in '%s' (%s-images-idx3-ubyte[.gz]); install them with "
                  "`apt-get install dataset-fashion-mnist`", split, path, strcmp(split, "train") ? "t10k" : "train");
    ddm_fatal("--data %s: no IDX images file for the %s split (expected a name with '%s' in it, like %s-images-idx3-"
              "ubyte[.gz])%s%s", path, split, strcmp(split, "train") ? "t10k' or 'test" : "train",
              strcmp(split, "train") ? "t10k" : "train", found[0] ? "; found: " : "", found);
}

DataSource *data_open_idx(const DataSpec *spec, const char *split, int whole_ok) {
    char got[8];
    char *images = find_images(spec->path, split, whole_ok, got);
    // labels: the images name with "images" -> "labels" and "idx3" -> "idx1"
    char *a = replace_all(images, "images", "labels"), *lb = replace_all(a, "idx3", "idx1");
    free(a);
    char *labels = existing_variant(lb);
    if (!labels)
        ddm_fatal("%s: no labels file beside it (expected %s, or the same with/without .gz)", images, lb);
    free(lb);
    DataSource *d = data_source_new("idx", images, got);
    IdxSource *s = xcalloc(1, sizeof *s);
    idx_images_open(images, &s->im);
    d->impl = s;
    d->read = idx_read;
    d->close = idx_close;
    d->n = s->im.n;
    d->c = 1;
    d->h = (int)s->im.h;
    d->w = (int)s->im.w;
    unsigned char *raw = idx_labels_read(labels, s->im.n);
    d->labels = xmalloc((size_t)d->n * sizeof(int32_t));
    for (int64_t i = 0; i < d->n; i++) {
        d->labels[i] = raw[i];
        if (raw[i] + 1 > d->num_classes) d->num_classes = raw[i] + 1;
    }
    free(raw);
    data_set_detail(d, "IDX images %s, labels %s%s", base_name(images), base_name(labels),
             s->im.owned ? " (decompressed in memory)" : " (memory-mapped)");
    free(images);
    free(labels);
    return d;
}
