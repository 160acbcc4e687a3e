// Precomputed latents (e.g. SD-VAE's 4 x 32 x 32 for ImageNet 256):
//   - one .npy [N, C, H, W] (float32 or float64), memory-mapped, with labels from --data-labels or a
//     <stem>_labels.npy / labels.npy beside it (none: unlabelled, said in the description);
//   - one .npz holding the latents ("latents", "features", "x", "images" or arr_0) and labels ("labels",
//     "y" or arr_1), loaded into memory (the .npz members may be compressed: save large sets as .npy);
//   - fast-DiT's layout: X_features/ and X_labels/ folders of per-sample .npy files with the same names,
//     each feature [1, C, H, W] (or [C, H, W]) and each label one integer ([1] or a scalar). Read per sample.
// The loader applies (v - shift[c]) * scale[c] (--latent-scale / --latent-shift; fast-DiT's features are
// already multiplied by SD-VAE's 0.18215 when they are written, so they take the default scale 1).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "data/data_impl.h"
#include "io/npy.h"
#include "io/npz.h"

enum { LAT_MAPPED, LAT_MEMORY, LAT_FILES };

typedef struct {
    int kind;
    int item_size;                 // 4 (<f4) or 8 (<f8)
    MappedFile map;                // LAT_MAPPED: the .npy
    const unsigned char *data;     // LAT_MAPPED: its first element
    float *mem;                    // LAT_MEMORY: [n, c, h, w]
    char *dir;                     // LAT_FILES: the features folder
    char **files;                  // LAT_FILES: [n] names in it
    unsigned char *header;         // LAT_FILES: the first file's header bytes, which every file must repeat
    size_t header_len, file_len;
} Latents;

static void convert(const unsigned char *src, int item_size, size_t n, float *dst) {
    if (item_size == 4) { memcpy(dst, src, n * 4); return; }
    for (size_t i = 0; i < n; i++) { double v; memcpy(&v, src + 8 * i, 8); dst[i] = (float)v; }
}

static int latents_read(DataSource *d, int64_t i, float *dst, char *err, size_t cap) {
    const Latents *l = d->impl;
    size_t per = (size_t)d->c * d->h * d->w;
    if (l->kind == LAT_MAPPED) { convert(l->data + (size_t)i * per * l->item_size, l->item_size, per, dst); return 0; }
    if (l->kind == LAT_MEMORY) { memcpy(dst, l->mem + (size_t)i * per, per * sizeof(float)); return 0; }
    char *path = data_join(l->dir, l->files[i]);
    FILE *f = fopen(path, "rb");
    unsigned char *buf = f ? malloc(l->file_len + 1) : NULL;
    size_t got = buf ? fread(buf, 1, l->file_len + 1, f) : 0;
    int r = 0;
    if (!f) { snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno)); r = -1; }
    else if (!buf) { snprintf(err, cap, "%s: out of memory", path); r = -1; }
    else if (got != l->file_len || memcmp(buf, l->header, l->header_len) != 0) {
        snprintf(err, cap, "%s: changed since the dataset was opened (%zu bytes, or another header, than the first "
                 "feature file's %zu bytes)", path, got, l->file_len);
        r = -1;
    } else {
        convert(buf + l->header_len, l->item_size, per, dst);
    }
    if (f) fclose(f);
    free(buf);
    free(path);
    return r;
}

static void latents_close(DataSource *d) {
    Latents *l = d->impl;
    data_unmap_file(&l->map);
    free(l->mem);
    if (l->files) for (int64_t i = 0; i < d->n; i++) free(l->files[i]);
    free(l->files);
    free(l->dir);
    free(l->header);
    free(l);
}

static const char *base_name(const char *p) { return strrchr(p, '/') ? strrchr(p, '/') + 1 : p; }

static void shape_str(const int64_t *s, int nd, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < nd && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

// Sets c, h, w from a sample shape [C, H, W] (the leading 1 of fast-DiT's [1, C, H, W] already dropped).
static void set_shape(DataSource *d, const int64_t *chw, const char *what) {
    for (int k = 0; k < 3; k++)
        if (chw[k] < 1 || chw[k] > (1 << 20)) ddm_fatal("%s: a latent dimension of %lld is not plausible", what, (long long)chw[k]);
    if (chw[0] > DATA_MAX_CHANNELS) ddm_fatal("%s: %lld channels, more than ddm takes (%d)", what, (long long)chw[0], DATA_MAX_CHANNELS);
    d->c = (int)chw[0];
    d->h = (int)chw[1];
    d->w = (int)chw[2];
}

static void check_float(const char *descr, const char *what) {
    if (strcmp(descr, "<f4") && strcmp(descr, "<f8"))
        ddm_fatal("%s: latents of dtype %s; expected float32 (<f4) or float64 (<f8)", what, descr);
}

// Labels from an array of n_expected integers ([n] or [n, 1], any numeric dtype holding whole numbers >= 0).
static int32_t *labels_of(const NpyArray *a, int64_t n_expected, const char *what, const char *data_what, int *classes) {
    char sh[128];
    shape_str(a->shape, a->ndim, sh, sizeof sh);
    int64_t n = a->ndim >= 1 ? a->shape[0] : 1;
    if (a->ndim > 2 || (a->ndim == 2 && a->shape[1] != 1))
        ddm_fatal("%s: labels of shape %s; expected [N] or [N, 1]", what, sh);
    if (n != n_expected)
        ddm_fatal("%s: %lld labels, but %s holds %lld latents", what, (long long)n, data_what, (long long)n_expected);
    int32_t *l = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    *classes = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = a->data[i];
        if (!(v >= 0 && v < (1 << 24)) || v != (float)(int32_t)v)
            ddm_fatal("%s: label %lld is %g; expected a whole number >= 0", what, (long long)i, v);
        l[i] = (int32_t)v;
        if (l[i] + 1 > *classes) *classes = l[i] + 1;
    }
    return l;
}

// ---------------------------------------------------------------------------------------------
// one .npy, mapped

static char *find_labels_beside(const char *path) {
    const char *b = base_name(path);
    size_t dirlen = (size_t)(b - path), stem = strlen(b) - 4;   // without ".npy"
    char cand[2][DATA_PATH_MAX + 32];
    snprintf(cand[0], sizeof cand[0], "%.*s%.*s_labels.npy", (int)dirlen, path, (int)stem, b);
    snprintf(cand[1], sizeof cand[1], "%.*slabels.npy", (int)dirlen, path);
    for (int k = 0; k < 2; k++)
        if (file_exists(cand[k]) && strcmp(cand[k], path)) return xstrdup(cand[k]);
    return NULL;
}

static void open_npy(DataSource *d, Latents *l, const DataSpec *spec) {
    const char *path = spec->path;
    l->kind = LAT_MAPPED;
    l->map = data_map_file(path);
    NpyHeader h = npy_parse_header(l->map.p, l->map.len, path);
    check_float(h.descr, path);
    char sh[128];
    shape_str(h.shape, h.ndim, sh, sizeof sh);
    if (h.ndim != 4) ddm_fatal("%s: latents of shape %s; expected [N, C, H, W]", path, sh);
    uint64_t have = l->map.len - h.data_offset;
    if (have < h.data_bytes)
        ddm_fatal("%s: truncated: header says %s %s (%llu bytes) but only %llu bytes follow", path, sh, h.descr,
                  (unsigned long long)h.data_bytes, (unsigned long long)have);
    if (have > h.data_bytes)
        ddm_fatal("%s: %llu unexpected bytes after the %llu data bytes the header describes", path,
                  (unsigned long long)(have - h.data_bytes), (unsigned long long)h.data_bytes);
    l->item_size = h.item_size;
    l->data = l->map.p + h.data_offset;
    d->n = h.shape[0];
    set_shape(d, h.shape + 1, path);
    char *labels = spec->labels[0] ? xstrdup(spec->labels) : find_labels_beside(path);
    if (labels) {
        NpyArray a = npy_load_f32(labels);
        d->labels = labels_of(&a, d->n, labels, path, &d->num_classes);
        npy_free(&a);
        data_set_detail(d, "%s (memory-mapped), labels %s", base_name(path), labels);
        free(labels);
    } else {
        data_set_detail(d, "%s (memory-mapped), unlabelled (no --data-labels, no <stem>_labels.npy "
                 "or labels.npy beside it)", base_name(path));
    }
}

// ---------------------------------------------------------------------------------------------
// one .npz, in memory

static const char *pick(char **names, const char *const *want, int nwant) {
    for (int k = 0; k < nwant; k++)
        for (char **p = names; *p; p++)
            if (!strcmp(*p, want[k])) return want[k];
    return NULL;
}

static void open_npz(DataSource *d, Latents *l, const DataSpec *spec) {
    const char *path = spec->path;
    int n;
    char **names = npz_member_names(path, &n);
    const char *xs[] = {"latents", "features", "x", "images", "arr_0"}, *ys[] = {"labels", "y", "arr_1"};
    const char *xn = pick(names, xs, 5), *yn = pick(names, ys, 3);
    if (!xn) {
        char list[300] = "";
        for (char **p = names; *p; p++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", p == names ? "" : ", ", *p);
        ddm_fatal("%s: no latents array (expected one named latents, features, x, images or arr_0; it holds: %s)", path, list);
    }
    char what[DATA_PATH_MAX + 64];
    NpyArray a = npz_load_f32(path, xn, what, sizeof what);
    check_float(a.descr, what);
    char sh[128];
    shape_str(a.shape, a.ndim, sh, sizeof sh);
    if (a.ndim != 4) ddm_fatal("%s: latents of shape %s; expected [N, C, H, W]", what, sh);
    l->kind = LAT_MEMORY;
    l->mem = a.data;
    d->n = a.shape[0];
    set_shape(d, a.shape + 1, what);
    if (yn) {
        char ywhat[DATA_PATH_MAX + 64];
        NpyArray y = npz_load_f32(path, yn, ywhat, sizeof ywhat);
        d->labels = labels_of(&y, d->n, ywhat, what, &d->num_classes);
        npy_free(&y);
        data_set_detail(d, "%s arrays %s and %s (in memory)", base_name(path), xn, yn);
    } else {
        data_set_detail(d, "%s array %s (in memory), unlabelled (no labels, y or arr_1 array)",
                 base_name(path), xn);
    }
    for (char **p = names; *p; p++) free(*p);
    free(names);
}

// ---------------------------------------------------------------------------------------------
// fast-DiT: X_features/ + X_labels/

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = xfopen(path, "rb");
    struct stat st;
    if (fstat(fileno(f), &st) != 0) ddm_fatal("cannot stat '%s': %s", path, strerror(errno));
    if (st.st_size > (1 << 30)) ddm_fatal("%s: %lld bytes: too large for one sample", path, (long long)st.st_size);
    *len = (size_t)st.st_size;
    unsigned char *buf = xmalloc(*len ? *len : 1);
    if (*len && fread(buf, 1, *len, f) != *len) ddm_fatal("%s: read error", path);
    fclose(f);
    return buf;
}

// Sample shape of a per-sample feature file's header: [1, C, H, W] or [C, H, W].
static const int64_t *sample_shape(const NpyHeader *h, const char *what) {
    char sh[128];
    shape_str(h->shape, h->ndim, sh, sizeof sh);
    if (h->ndim == 4 && h->shape[0] == 1) return h->shape + 1;
    if (h->ndim == 3) return h->shape;
    ddm_fatal("%s: a feature of shape %s; expected one sample, [1, C, H, W] or [C, H, W]", what, sh);
}

static char **npy_names(const char *dir, int *n, int *skipped) {
    int all;
    char **names = data_list_dir(dir, 'f', &all);
    int k = 0;
    *skipped = 0;
    for (int i = 0; i < all; i++) {
        if (data_has_suffix(names[i], ".npy")) names[k++] = names[i];
        else { free(names[i]); (*skipped)++; }
    }
    names[k] = NULL;
    *n = k;
    return names;
}

static void open_feature_dirs(DataSource *d, Latents *l, const char *feat, const char *lab) {
    if (!data_is_dir(lab)) ddm_fatal("%s: no labels folder %s beside it (fast-DiT writes X_features/ and X_labels/)", feat, lab);
    int nf, nl, skf, skl;
    char **fs = npy_names(feat, &nf, &skf), **ls = npy_names(lab, &nl, &skl);
    if (!nf) ddm_fatal("%s: no .npy files", feat);
    for (int i = 0; i < nf || i < nl; i++) {
        int c = i >= nf ? 1 : i >= nl ? -1 : strcmp(fs[i], ls[i]);
        if (c)
            ddm_fatal("%s holds %d .npy files and %s holds %d, which do not pair up by name: %s/%s has no match", lab, nl,
                      feat, nf, c < 0 ? feat : lab, c < 0 ? fs[i] : ls[i]);
    }
    l->kind = LAT_FILES;
    l->dir = xstrdup(feat);
    l->files = fs;
    d->n = nf;
    char *first = data_join(feat, fs[0]);
    size_t len;
    unsigned char *buf = slurp(first, &len);
    NpyHeader h = npy_parse_header(buf, len, first);
    check_float(h.descr, first);
    set_shape(d, sample_shape(&h, first), first);
    if (len - h.data_offset != h.data_bytes)
        ddm_fatal("%s: %zu data bytes, but its header describes %llu", first, len - h.data_offset,
                  (unsigned long long)h.data_bytes);
    l->item_size = h.item_size;
    l->header_len = h.data_offset;
    l->header = xmalloc(h.data_offset);
    memcpy(l->header, buf, h.data_offset);
    l->file_len = len;
    free(buf);
    char sh0[128];
    shape_str(h.shape, h.ndim, sh0, sizeof sh0);
    // Every file the size of the first (a stat each: cheap even for ImageNet's 1.28M); a file that is not
    // gets its header read for the message.
    for (int64_t i = 1; i < d->n; i++) {
        char *p = data_join(feat, fs[i]);
        struct stat st;
        if (stat(p, &st) != 0) ddm_fatal("cannot stat '%s': %s", p, strerror(errno));
        if ((size_t)st.st_size != len) {
            size_t l2;
            unsigned char *b2 = slurp(p, &l2);
            NpyHeader h2 = npy_parse_header(b2, l2, p);
            char sh[128];
            shape_str(h2.shape, h2.ndim, sh, sizeof sh);
            ddm_fatal("%s holds %s %s in %zu bytes, but %s holds %s %s in %zu: every feature file must hold one sample "
                      "of the same shape", p, sh, h2.descr, l2, first, sh0, h.descr, len);
        }
        free(p);
    }
    d->labels = xmalloc((size_t)d->n * sizeof(int32_t));
    for (int64_t i = 0; i < d->n; i++) {
        char *p = data_join(lab, ls[i]);
        NpyArray a = npy_load_f32(p);
        if (npy_numel(&a) != 1) {
            char sh[128];
            shape_str(a.shape, a.ndim, sh, sizeof sh);
            ddm_fatal("%s: a label of shape %s; expected one integer ([1] or a scalar)", p, sh);
        }
        float v = a.data[0];
        if (!(v >= 0 && v < (1 << 24)) || v != (float)(int32_t)v)
            ddm_fatal("%s: label %g; expected a whole number >= 0", p, v);
        d->labels[i] = (int32_t)v;
        if (d->labels[i] + 1 > d->num_classes) d->num_classes = d->labels[i] + 1;
        npy_free(&a);
        free(p);
    }
    data_free_list(ls);
    if (skf + skl)
        fprintf(stderr, "ddm: warning: %s, %s: skipped %d files that are not .npy\n", feat, lab, skf + skl);
    data_set_detail(d, "per-sample features %s %s + labels %s (read when needed)%s", base_name(feat),
             sh0, base_name(lab), skf + skl ? "; non-.npy files skipped" : "");
    free(first);
}

// The features/labels folder pair of path for split.
static void feature_dirs(const char *path, const char *split, int whole_ok, char **feat, char **lab, char *got) {
    if (data_has_suffix(path, "_features")) {
        size_t n = strlen(path) - 9;
        *feat = xstrdup(path);
        *lab = xmalloc(n + 8);
        snprintf(*lab, n + 8, "%.*s_labels", (int)n, path);
        const char *named = data_split_of_name(base_name(path));
        if (!whole_ok && (!named || strcmp(named, split)))
            ddm_fatal("--data %s: one features folder has no %s split; give one with --test-data", path, split);
        strcpy(got, named ? named : "all");
        return;
    }
    int n, hits = 0, total = 0;
    char **subs = data_list_dir(path, 'd', &n), *hit = NULL, *only = NULL, found[600] = "";
    for (int i = 0; i < n; i++) {
        if (!data_has_suffix(subs[i], "_features")) continue;
        total++;
        snprintf(found + strlen(found), sizeof found - strlen(found), "%s%s", found[0] ? ", " : "", subs[i]);
        const char *named = data_split_of_name(subs[i]);
        if (named && !strcmp(named, split)) { hits++; hit = subs[i]; }
        if (!named) only = subs[i];
    }
    const char *use = NULL;
    if (hits == 1) { use = hit; strcpy(got, split); }
    else if (hits == 0 && total == 1 && only && (whole_ok || !strcmp(split, "train"))) { use = only; strcpy(got, "all"); }
    if (!use)
        ddm_fatal("--data %s: %s (features folders: %s)", path, total ? (hits > 1 ? "several features folders for this split"
                  : "no features folder for this split; give one with --test-data") : "no X_features/ folder", found[0] ? found : "none");
    char *sub = data_join(path, use);
    feature_dirs(sub, split, 1, feat, lab, got);
    if (!strcmp(got, "all") && hits == 1) strcpy(got, split);
    free(sub);
    data_free_list(subs);
}

// A folder holding one .npy or .npz of latents (and perhaps its labels): that file.
static char *single_array_in(const char *dir) {
    int n;
    char **names = data_list_dir(dir, 'f', &n), *one = NULL;
    int count = 0;
    for (int i = 0; i < n; i++)
        if ((data_has_suffix(names[i], ".npy") || data_has_suffix(names[i], ".npz")) && !strstr(names[i], "label")) {
            count++;
            free(one);
            one = data_join(dir, names[i]);
        }
    data_free_list(names);
    if (count != 1) { free(one); return NULL; }
    return one;
}

DataSource *data_open_latents(const DataSpec *spec, const char *split, int whole_ok) {
    Latents *l = xcalloc(1, sizeof *l);
    DataSource *d;
    DataSpec s = *spec;
    int is_dir = data_is_dir(spec->path);
    int has_pairs = 0;
    if (is_dir && !data_has_suffix(spec->path, "_features")) {
        int n;
        char **subs = data_list_dir(spec->path, 'd', &n);
        for (int i = 0; i < n; i++) has_pairs |= data_has_suffix(subs[i], "_features");
        data_free_list(subs);
        if (!has_pairs) {
            char *one = single_array_in(spec->path);
            if (!one)
                ddm_fatal("--data %s: no latents found (expected X_features/ and X_labels/ folders, or one .npy/.npz "
                          "array of latents)", spec->path);
            snprintf(s.path, sizeof s.path, "%s", one);
            free(one);
            is_dir = 0;
        }
    }
    if (is_dir) {
        char *feat, *lab, got[8];
        feature_dirs(spec->path, split, whole_ok, &feat, &lab, got);
        d = data_source_new("latents", feat, got);
        open_feature_dirs(d, l, feat, lab);
        free(feat);
        free(lab);
    } else {
        const char *named = data_split_of_name(base_name(s.path));
        if (!whole_ok && (!named || strcmp(named, split)))
            ddm_fatal("--data %s: one array of latents has no %s split; give one with --test-data", s.path, split);
        d = data_source_new("latents", s.path, named ? named : "all");
        if (data_has_suffix(s.path, ".npz")) open_npz(d, l, &s);
        else if (data_has_suffix(s.path, ".npy")) open_npy(d, l, &s);
        else ddm_fatal("--data %s: latents must be a .npy or .npz array, or X_features/ + X_labels/ folders", s.path);
    }
    d->impl = l;
    d->read = latents_read;
    d->close = latents_close;
    d->is_latent = 1;
    data_parse_channels(spec->scale, d->c, 1, d->scale, "--latent-scale");
    data_parse_channels(spec->shift, d->c, 0, d->shift, "--latent-shift");
    if (d->n < 1) ddm_fatal("--data %s: holds no latents", d->path);
    return d;
}
