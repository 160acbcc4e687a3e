// The dataset interface (data.h): format detection, the common parts of every source (reading, the
// description a checkpoint records, in-memory subsets, seeded draws) and the helpers the formats share.
#include "data/data.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "data/data_impl.h"
#include "rng.h"

void data_spec_defaults(DataSpec *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->path, sizeof s->path, "%s", DDM_FASHION_MNIST_DIR);
    snprintf(s->format, sizeof s->format, "auto");
    s->cache_mb = 1024;
}

// ---------------------------------------------------------------------------------------------
// helpers

DataSource *data_source_new(const char *format, const char *path, const char *split) {
    DataSource *d = xcalloc(1, sizeof *d);
    d->format = format;
    snprintf(d->path, sizeof d->path, "%s", path);
    snprintf(d->split, sizeof d->split, "%s", split);
    for (int c = 0; c < DATA_MAX_CHANNELS; c++) d->scale[c] = 1;
    return d;
}

void data_set_detail(DataSource *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->detail, sizeof d->detail, fmt, ap);   // a long path may cut it short: it is a description
    va_end(ap);
}

uint64_t data_mul(uint64_t a, uint64_t b, uint64_t limit, const char *what) {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > limit)
        ddm_fatal("%s: %llu x %llu is too large (the limit is %llu)", what, (unsigned long long)a,
                  (unsigned long long)b, (unsigned long long)limit);
    return r;
}

uint64_t data_memory_bound(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return (uint64_t)1 << 34;   // unknown: 16 GiB
    return (uint64_t)pages * (uint64_t)size / 4 * 3;
}

MappedFile data_map_file(const char *path) {
    MappedFile m = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) ddm_fatal("cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) ddm_fatal("cannot stat '%s': %s", path, strerror(errno));
    m.len = (size_t)st.st_size;
    if (m.len) {
        void *p = mmap(NULL, m.len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) ddm_fatal("cannot memory-map '%s': %s", path, strerror(errno));
        m.p = p;
    }
    close(fd);
    return m;
}

void data_unmap_file(MappedFile *m) {
    if (m->len) munmap((void *)m->p, m->len);
    m->p = NULL;
    m->len = 0;
}

int data_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int data_has_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

char *data_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **data_list_dir(const char *dir, int kind, int *count) {
    DIR *d = opendir(dir);
    if (!d) ddm_fatal("cannot read the directory '%s': %s", dir, strerror(errno));
    int n = 0, cap = 16;
    char **names = xmalloc(cap * sizeof(char *));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (kind) {
            int is_dir;
            if (e->d_type == DT_DIR) is_dir = 1;
            else if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {   // follow links, as os.walk(followlinks)
                char *p = data_join(dir, e->d_name);
                is_dir = data_is_dir(p);
                free(p);
            } else is_dir = 0;
            if (is_dir != (kind == 'd')) continue;
        }
        if (n + 1 >= cap) names = xrealloc(names, (cap *= 2) * sizeof(char *));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), cmp_str);
    names[n] = NULL;
    if (count) *count = n;
    return names;
}

void data_free_list(char **names) {
    if (!names) return;
    for (char **p = names; *p; p++) free(*p);
    free(names);
}

void data_parse_channels(const char *s, int c, float dflt, float *out, const char *flag) {
    for (int i = 0; i < c; i++) out[i] = dflt;
    if (!s[0]) return;
    float v[DATA_MAX_CHANNELS];
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !(x > -1e30 && x < 1e30) || n == DATA_MAX_CHANNELS)
            ddm_fatal("%s '%s': expected one number or a comma-separated number per channel", flag, s);
        v[n++] = (float)x;
        if (*end == 0) break;
        if (*end != ',') ddm_fatal("%s '%s': expected one number or a comma-separated number per channel", flag, s);
        p = end + 1;
    }
    if (n != 1 && n != c)
        ddm_fatal("%s '%s': %d values, but the data have %d channels (give one value or %d)", flag, s, n, c, c);
    for (int i = 0; i < c; i++) out[i] = v[n == 1 ? 0 : i];
}

const char *data_split_of_name(const char *name) {
    if (strstr(name, "train")) return "train";
    if (strstr(name, "test") || strstr(name, "t10k") || strstr(name, "val")) return "test";
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// format detection

static const char *detect_file(const char *path) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (data_has_suffix(base, ".npy") || data_has_suffix(base, ".npz")) return "latents";
    if (data_has_suffix(base, ".bin")) return "cifar";
    if (strstr(base, "idx3-ubyte")) return "idx";
    ddm_fatal("--data %s: cannot tell the dataset format from the file name (expected .npy/.npz latents, a CIFAR "
              ".bin batch or an IDX *-images-idx3-ubyte[.gz] file); pass --data-format", path);
}

static const char *detect_dir(const char *path) {
    int n;
    char **names = data_list_dir(path, 0, &n);
    int cifar = 0, idx = 0, latents = data_has_suffix(path, "_features"), subdirs = 0;
    for (int i = 0; i < n; i++) {
        const char *e = names[i];
        char *full = data_join(path, e);
        int is_dir = data_is_dir(full);
        free(full);
        if (!strcmp(e, "data_batch_1.bin") || !strcmp(e, "test_batch.bin") || !strcmp(e, "train.bin") ||
            !strcmp(e, "test.bin") || (is_dir && (!strcmp(e, "cifar-10-batches-bin") || !strcmp(e, "cifar-100-binary"))))
            cifar = 1;
        else if (!is_dir && strstr(e, "idx3-ubyte")) idx = 1;
        else if ((is_dir && data_has_suffix(e, "_features")) || (!is_dir && (data_has_suffix(e, ".npy") || data_has_suffix(e, ".npz"))))
            latents = 1;
        else if (is_dir && e[0] != '.') subdirs = 1;
    }
    data_free_list(names);
    if (cifar + idx + latents > 1)
        ddm_fatal("--data %s: holds more than one kind of dataset (%s%s%s); pass --data-format", path,
                  cifar ? "CIFAR batches " : "", idx ? "IDX files " : "", latents ? "latents" : "");
    if (cifar) return "cifar";
    if (idx) return "idx";
    if (latents) return "latents";
    if (subdirs) return "imagefolder";
    ddm_fatal("--data %s: no dataset found: expected IDX files (*-images-idx3-ubyte[.gz]), CIFAR batches "
              "(data_batch_*.bin, test_batch.bin, train.bin, test.bin), latents (.npy/.npz, or X_features/ and "
              "X_labels/ folders) or an ImageFolder (one sub-folder of images per class)", path);
}

// The class rule, one for every format. The number of classes sizes the model's label embedding, so a stray
// label (a 255 in an IDX file, a 16,000,000 in a latents .npy) must not silently become that many classes:
// with --data-classes K every label must lie in 0..K-1 (K may exceed the classes present: a subset of
// ImageNet's); without it the classes are 0 .. the largest label, and each of them must have a sample. That
// last rule is for the training split, which defines the classes: a small test split may miss some, and is held
// to the training split's classes by data_check_test_classes instead. A format that fixes its classes (CIFAR,
// an ImageFolder's folders) checks its labels itself; K must agree.
static void check_classes(DataSource *d, int declared, int defines_classes) {
    if (!d->labels) return;
    if (d->classes_of_format) {
        if (declared && declared != d->num_classes)
            ddm_fatal("--data-classes %d: %s holds %s data with %d classes", declared, d->path, d->format, d->num_classes);
        return;
    }
    if (declared) {
        for (int64_t i = 0; i < d->n; i++)
            if (d->labels[i] < 0 || d->labels[i] >= declared)
                ddm_fatal("--data %s: sample %lld of the %s split has label %d, outside the %d classes of --data-classes "
                          "(0..%d)", d->path, (long long)i, d->split, d->labels[i], declared, declared - 1);
        d->num_classes = declared;
        return;
    }
    if (!defines_classes) return;
    int k = d->num_classes;
    unsigned char *seen = xcalloc((size_t)k, 1);
    for (int64_t i = 0; i < d->n; i++) seen[d->labels[i]] = 1;
    int empty = 0, first = -1;
    for (int c = 0; c < k; c++)
        if (!seen[c]) {
            if (first < 0) first = c;
            empty++;
        }
    free(seen);
    if (empty) {
        int64_t at = 0;
        while (d->labels[at] != k - 1) at++;
        ddm_fatal("--data %s: the %s split's labels run up to %d (sample %lld), but %d of the classes 0..%d have no "
                  "sample (the first: %d): a label out of range? If the data is a subset of K classes, say so with "
                  "--data-classes K", d->path, d->split, k - 1, (long long)at, empty, k - 1, first);
    }
}

DataSource *data_open(const DataSpec *spec, const char *split, int whole_ok) {
    DDM_ASSERT(!strcmp(split, "train") || !strcmp(split, "test"));
    const char *path = spec->path;
    if (!path[0]) ddm_fatal("--data is empty: expected a dataset directory or file");
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            ddm_fatal("--data %s does not exist (ddm reads IDX, ImageFolder, CIFAR and latents, docs/data.md; the default, "
                      "Fashion-MNIST, comes with `apt-get install dataset-fashion-mnist`)", path);
        ddm_fatal("--data %s: %s", path, strerror(errno));
    }
    const char *f = spec->format;
    if (!f[0] || !strcmp(f, "auto")) f = S_ISDIR(st.st_mode) ? detect_dir(path) : detect_file(path);
    DataSource *d;
    if (!strcmp(f, "idx")) d = data_open_idx(spec, split, whole_ok);
    else if (!strcmp(f, "cifar")) d = data_open_cifar(spec, split, whole_ok);
    else if (!strcmp(f, "imagefolder")) d = data_open_imagefolder(spec, split, whole_ok);
    else if (!strcmp(f, "latents")) d = data_open_latents(spec, split, whole_ok);
    else ddm_fatal("--data-format '%s': expected auto, idx, imagefolder, cifar or latents", spec->format);
    if (!d->is_latent && (spec->scale[0] || spec->shift[0]))
        ddm_fatal("--latent-scale / --latent-shift apply to latents, but %s holds %s images", path, d->format);
    if (spec->image_size && strcmp(d->format, "imagefolder") != 0)
        ddm_fatal("--image-size %d applies to an ImageFolder, but %s holds %s data of a fixed size (%dx%d)",
                  spec->image_size, path, d->format, d->h, d->w);
    if (d->n < 1) ddm_fatal("--data %s: the %s split holds no samples", path, d->split);
    check_classes(d, spec->classes, !strcmp(split, "train"));
    d->spec = *spec;
    return d;
}

void data_check_test_classes(const DataSource *train, const DataSource *test) {
    if (!train->labels || !test->labels || test->num_classes <= train->num_classes) return;
    int64_t at = 0;
    while (test->labels[at] < train->num_classes) at++;
    ddm_fatal("%s: sample %lld of the test split has label %d, but the training split %s has %d classes (0..%d)",
              test->path, (long long)at, test->labels[at], train->path, train->num_classes, train->num_classes - 1);
}

void data_close(DataSource *d) {
    if (!d) return;
    if (d->close) d->close(d);
    else free(d->impl);
    free(d->labels);
    if (d->class_names)
        for (int i = 0; i < d->num_classes; i++) free(d->class_names[i]);
    free(d->class_names);
    free(d);
}

int data_read(DataSource *d, int64_t i, float *dst, char *err, size_t cap) {
    if (i < 0 || i >= d->n) {
        snprintf(err, cap, "%s: sample %lld asked for, the %s split holds %lld", d->path, (long long)i, d->split,
                 (long long)d->n);
        return -1;
    }
    if (d->read(d, i, dst, err, cap) != 0) return -1;
    if (d->is_latent) {
        size_t hw = (size_t)d->h * d->w;
        for (int c = 0; c < d->c; c++) {
            float s = d->scale[c], t = d->shift[c];
            if (s == 1 && t == 0) continue;   // leaves the values bit for bit
            for (size_t p = 0; p < hw; p++) dst[c * hw + p] = (dst[c * hw + p] - t) * s;
        }
    }
    return 0;
}

void data_get(DataSource *d, int64_t i, float *dst) {
    char err[1200];
    if (data_read(d, i, dst, err, sizeof err) != 0) ddm_fatal("%s", err);
}

// ---------------------------------------------------------------------------------------------
// description

static cJSON *floats_json(const float *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

char *data_describe_json(const DataSource *d) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", d->format);
    cJSON_AddStringToObject(o, "path", d->path);
    cJSON_AddStringToObject(o, "split", d->split);
    cJSON_AddNumberToObject(o, "n", (double)d->n);
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(d->c));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(d->h));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(d->w));
    cJSON_AddNumberToObject(o, "num_classes", d->num_classes);
    cJSON_AddStringToObject(o, "values", d->is_latent ? "latents: (v - shift) * scale per channel"
                                                      : "pixels: v / 255 * 2 - 1, in [-1, 1]");
    if (d->is_latent) {
        cJSON_AddItemToObject(o, "scale", floats_json(d->scale, d->c));
        cJSON_AddItemToObject(o, "shift", floats_json(d->shift, d->c));
    }
    if (d->class_names) {
        cJSON *c = cJSON_AddArrayToObject(o, "classes");
        for (int i = 0; i < d->num_classes; i++) cJSON_AddItemToArray(c, cJSON_CreateString(d->class_names[i]));
    }
    cJSON_AddStringToObject(o, "detail", d->detail);
    cJSON *open = cJSON_AddObjectToObject(o, "open");
    cJSON_AddStringToObject(open, "path", d->spec.path);
    cJSON_AddStringToObject(open, "format", d->format);
    cJSON_AddNumberToObject(open, "image_size", d->spec.image_size);
    cJSON_AddStringToObject(open, "labels", d->spec.labels);
    cJSON_AddStringToObject(open, "scale", d->spec.scale);
    cJSON_AddStringToObject(open, "shift", d->spec.shift);
    if (d->spec.classes) cJSON_AddNumberToObject(open, "classes", d->spec.classes);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int copy_str(cJSON *o, const char *key, char *dst, size_t cap) {
    cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap) return 0;
    memcpy(dst, it->valuestring, strlen(it->valuestring) + 1);
    return 1;
}

int data_spec_from_description(const char *json, DataSpec *s) {
    cJSON *root = cJSON_Parse(json);
    cJSON *open = root ? cJSON_GetObjectItemCaseSensitive(root, "open") : NULL;
    DataSpec t;
    data_spec_defaults(&t);
    int ok = cJSON_IsObject(open) && copy_str(open, "path", t.path, sizeof t.path) && t.path[0] &&
             copy_str(open, "format", t.format, sizeof t.format) && copy_str(open, "labels", t.labels, sizeof t.labels) &&
             copy_str(open, "scale", t.scale, sizeof t.scale) && copy_str(open, "shift", t.shift, sizeof t.shift);
    cJSON *size = open ? cJSON_GetObjectItemCaseSensitive(open, "image_size") : NULL;
    if (ok && cJSON_IsNumber(size) && size->valuedouble >= 0 && size->valuedouble <= 65536) t.image_size = (int)size->valuedouble;
    else ok = 0;
    cJSON *classes = open ? cJSON_GetObjectItemCaseSensitive(open, "classes") : NULL;   // absent: from the labels
    if (ok && classes) {
        if (cJSON_IsNumber(classes) && classes->valuedouble >= 1 && classes->valuedouble <= DATA_MAX_CLASSES)
            t.classes = (int)classes->valuedouble;
        else ok = 0;
    }
    cJSON_Delete(root);
    if (ok) *s = t;
    return ok;
}

void data_describe_line(const DataSource *d, char *buf, size_t cap) {
    int k = snprintf(buf, cap, "%s %s (%s): %lld x %dx%dx%d, ", d->format, d->path, d->split, (long long)d->n, d->c,
                     d->h, d->w);
    if (k < 0 || (size_t)k >= cap) return;
    if (d->num_classes) k += snprintf(buf + k, cap - k, "%d classes", d->num_classes);
    else k += snprintf(buf + k, cap - k, "unlabelled");
    if (k < 0 || (size_t)k >= cap) return;
    if (d->is_latent) {
        k += snprintf(buf + k, cap - k, ", latents (v - shift) * scale, scale %g, shift %g%s", d->scale[0],
                      d->shift[0], d->c > 1 ? " (channel 0)" : "");
        if (k < 0 || (size_t)k >= cap) return;
    }
    if (d->detail[0]) snprintf(buf + k, cap - k, "; %s", d->detail);
}

// ---------------------------------------------------------------------------------------------
// in-memory subsets and draws

static void read_many(DataSource *d, const int64_t *idx, int64_t n, float *dst) {
    size_t per = (size_t)d->c * d->h * d->w;
    char first[1200] = "";
    int failed = 0;
    #pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; i++) {
        int stop;
        #pragma omp atomic read
        stop = failed;
        if (stop) continue;
        char err[1200];
        if (data_read(d, idx[i], dst + (size_t)i * per, err, sizeof err) != 0) {
            #pragma omp critical(data_read_many)
            if (!first[0]) snprintf(first, sizeof first, "%s", err);
            #pragma omp atomic write
            failed = 1;
        }
    }
    if (failed) ddm_fatal("%s", first);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

Dataset data_materialize(DataSource *d, int64_t n, uint64_t seed, const char *what) {
    if (n <= 0 || n > d->n) n = d->n;
    if (n > INT32_MAX) ddm_fatal("%s: %lld samples cannot be held at once (at most %d)", what, (long long)n, INT32_MAX);
    size_t per = (size_t)d->c * d->h * d->w;
    uint64_t bytes = (uint64_t)n * per * sizeof(float), bound = data_memory_bound();
    if (bytes / sizeof(float) / per != (uint64_t)n || bytes > bound)
        ddm_fatal("%s: %lld samples of %dx%dx%d need %.1f GiB in memory, more than the %.1f GiB available; ask for "
                  "fewer with %s", d->path, (long long)n, d->c, d->h, d->w, bytes / 1073741824.0, bound / 1073741824.0, what);
    int64_t *idx = xmalloc((size_t)n * sizeof(int64_t));
    if (d->class_sorted && n < d->n) {
        DDM_ASSERT(d->n <= INT32_MAX);
        int *perm = xmalloc((size_t)d->n * sizeof(int));
        Rng r;
        rng_init(&r, seed, 0x5AB5E7);
        rng_permutation(&r, perm, (int)d->n);
        for (int64_t i = 0; i < n; i++) idx[i] = perm[i];
        free(perm);
        qsort(idx, (size_t)n, sizeof(int64_t), cmp_i64);
    } else {
        for (int64_t i = 0; i < n; i++) idx[i] = i;
    }
    Dataset ds = {(int)n, d->c, d->h, d->w, xmalloc(bytes ? bytes : 1), NULL, d->num_classes};
    read_many(d, idx, n, ds.images);
    if (d->labels) {
        ds.labels = xmalloc((size_t)n * sizeof(int));
        for (int64_t i = 0; i < n; i++) ds.labels[i] = d->labels[idx[i]];
    }
    free(idx);
    return ds;
}

float *data_draw(DataSource *d, int n, uint64_t seed) {
    if (n > d->n) ddm_fatal("asked for %d images of a split that holds %lld (%s)", n, (long long)d->n, d->path);
    if (d->n > INT32_MAX) ddm_fatal("%s: %lld samples: too many for a seeded draw", d->path, (long long)d->n);
    int *perm = xmalloc((size_t)d->n * sizeof(int));
    Rng r;
    rng_init(&r, seed, 0xE7A1);   // the stream of dataset_draw, so the draws are the same images
    rng_permutation(&r, perm, (int)d->n);
    int64_t *idx = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    for (int i = 0; i < n; i++) idx[i] = perm[i];
    free(perm);
    size_t per = (size_t)d->c * d->h * d->w;
    float *x = xmalloc((size_t)(n > 0 ? n : 1) * per * sizeof(float));
    read_many(d, idx, n, x);
    free(idx);
    return x;
}
