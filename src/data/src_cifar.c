// CIFAR-10 and CIFAR-100 binary batches (SPEC §4): records of label byte(s) + 3072 pixel bytes (1024 R,
// 1024 G, 1024 B, each 32 x 32 row-major), i.e. [3, 32, 32] as stored. CIFAR-10: data_batch_1..5.bin
// (train) and test_batch.bin, 1 label byte < 10. CIFAR-100: train.bin and test.bin, 2 label bytes (coarse
// < 20, fine < 100); the fine label is the class. Files are memory-mapped.
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "data/data_impl.h"
#include "data/idx.h"

#define CIFAR_PIXELS 3072
#define CIFAR_MAX_FILES 5

typedef struct {
    int nfiles, label_bytes;
    MappedFile map[CIFAR_MAX_FILES];
    int64_t first[CIFAR_MAX_FILES + 1];   // index of each file's first record; first[nfiles] = n
} CifarSource;

static int cifar_read(DataSource *d, int64_t i, float *dst, char *err, size_t cap) {
    (void)err; (void)cap;
    const CifarSource *s = d->impl;
    int f = 0;
    while (i >= s->first[f + 1]) f++;
    size_t rec = (size_t)(s->label_bytes + CIFAR_PIXELS);
    const unsigned char *px = s->map[f].p + (size_t)(i - s->first[f]) * rec + s->label_bytes;
    for (int p = 0; p < CIFAR_PIXELS; p++) dst[p] = idx_pixel(px[p]);
    return 0;
}

static void cifar_close(DataSource *d) {
    CifarSource *s = d->impl;
    for (int f = 0; f < s->nfiles; f++) data_unmap_file(&s->map[f]);
    free(s);
}

static const char *base_name(const char *p) { return strrchr(p, '/') ? strrchr(p, '/') + 1 : p; }

// Label bytes of a single batch file: by its name, else by which record size divides its length.
static int label_bytes_of_file(const char *path, uint64_t len) {
    const char *b = base_name(path);
    if (!strncmp(b, "data_batch", 10) || !strncmp(b, "test_batch", 10)) return 1;
    if (!strcmp(b, "train.bin") || !strcmp(b, "test.bin")) return 2;
    int by10 = len && len % (CIFAR_PIXELS + 1) == 0, by100 = len && len % (CIFAR_PIXELS + 2) == 0;
    if (by10 != by100) return by10 ? 1 : 2;
    ddm_fatal("%s: %llu bytes is not a whole number of CIFAR records (3073 bytes for CIFAR-10: 1 label byte + 3072 "
              "pixels; 3074 for CIFAR-100: 2 label bytes + 3072)", path, (unsigned long long)len);
}

static void add_file(DataSource *d, CifarSource *s, const char *path) {
    MappedFile m = data_map_file(path);
    uint64_t rec = (uint64_t)s->label_bytes + CIFAR_PIXELS;
    if (m.len == 0 || m.len % rec)
        ddm_fatal("%s: %llu bytes is not a whole number of %llu-byte %s records (%d label byte%s + 3072 pixels)", path,
                  (unsigned long long)m.len, (unsigned long long)rec, s->label_bytes == 1 ? "CIFAR-10" : "CIFAR-100",
                  s->label_bytes, s->label_bytes == 1 ? "" : "s");
    int64_t count = (int64_t)(m.len / rec), base = s->first[s->nfiles];
    d->labels = xrealloc(d->labels, (size_t)(base + count) * sizeof(int32_t));
    for (int64_t r = 0; r < count; r++) {
        const unsigned char *l = m.p + (size_t)r * rec;
        int coarse = l[0], fine = s->label_bytes == 2 ? l[1] : l[0];
        if (s->label_bytes == 1 && fine >= 10)
            ddm_fatal("%s: record %lld has label %d, expected 0..9 (CIFAR-10)", path, (long long)r, fine);
        if (s->label_bytes == 2 && (coarse >= 20 || fine >= 100))
            ddm_fatal("%s: record %lld has labels (coarse %d, fine %d), expected coarse 0..19 and fine 0..99 (CIFAR-100)",
                      path, (long long)r, coarse, fine);
        d->labels[base + r] = fine;
    }
    s->map[s->nfiles++] = m;
    s->first[s->nfiles] = base + count;
}

// The directory holding the batches: path itself, or its cifar-10-batches-bin / cifar-100-binary (as the
// archives unpack).
static char *batches_dir(const char *path) {
    const char *subs[2] = {"cifar-10-batches-bin", "cifar-100-binary"};
    char *found = NULL;
    for (int k = 0; k < 2; k++) {
        char *p = data_join(path, subs[k]);
        if (data_is_dir(p)) {
            if (found) ddm_fatal("--data %s: holds both %s and %s; pass one of them", path, subs[0], subs[1]);
            found = p;
        } else {
            free(p);
        }
    }
    return found ? found : xstrdup(path);
}

static int has(const char *dir, const char *name) {
    char *p = data_join(dir, name);
    int ok = file_exists(p);
    free(p);
    return ok;
}

DataSource *data_open_cifar(const DataSpec *spec, const char *split, int whole_ok) {
    CifarSource *s = xcalloc(1, sizeof *s);
    DataSource *d;
    if (!data_is_dir(spec->path)) {
        const char *b = base_name(spec->path);
        const char *named = !strncmp(b, "data_batch", 10) || !strcmp(b, "train.bin") ? "train"
                          : !strncmp(b, "test_batch", 10) || !strcmp(b, "test.bin") ? "test" : NULL;
        if (!whole_ok && (!named || strcmp(named, split)))
            ddm_fatal("--data %s: one CIFAR batch file has no %s split; give one with --test-data", spec->path, split);
        d = data_source_new("cifar", spec->path, named ? named : "all");
        MappedFile probe = data_map_file(spec->path);
        s->label_bytes = label_bytes_of_file(spec->path, probe.len);
        data_unmap_file(&probe);
        add_file(d, s, spec->path);
        data_set_detail(d, "CIFAR-%s batch %s", s->label_bytes == 1 ? "10" : "100 (fine labels)", b);
    } else {
        char *dir = batches_dir(spec->path);
        int c10 = has(dir, "data_batch_1.bin") || has(dir, "test_batch.bin");
        int c100 = has(dir, "train.bin") || has(dir, "test.bin");
        if (c10 && c100) ddm_fatal("--data %s: holds both CIFAR-10 (data_batch_*.bin) and CIFAR-100 (train.bin) batches", dir);
        if (!c10 && !c100)
            ddm_fatal("--data %s: no CIFAR batches (CIFAR-10: data_batch_1..5.bin, test_batch.bin; CIFAR-100: train.bin, "
                      "test.bin)", dir);
        s->label_bytes = c10 ? 1 : 2;
        d = data_source_new("cifar", dir, split);
        const char *files[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                                "data_batch_5.bin"};
        int train = !strcmp(split, "train"), nf = c10 && train ? 5 : 1;
        if (!c10 || !train) files[0] = c10 ? "test_batch.bin" : train ? "train.bin" : "test.bin";
        for (int f = 0; f < nf; f++) {
            char *p = data_join(dir, files[f]);
            if (!file_exists(p))
                ddm_fatal("%s is missing (the %s split of CIFAR-%s is %s)", p, split, c10 ? "10" : "100",
                          nf == 5 ? "data_batch_1.bin .. data_batch_5.bin" : files[0]);
            add_file(d, s, p);
            free(p);
        }
        data_set_detail(d, "CIFAR-%s, %s", c10 ? "10" : "100 (fine labels)",
                 nf == 5 ? "data_batch_1..5.bin" : files[0]);
        free(dir);
    }
    d->impl = s;
    d->read = cifar_read;
    d->close = cifar_close;
    d->n = s->first[s->nfiles];
    d->c = 3;
    d->h = d->w = 32;
    d->num_classes = s->label_bytes == 1 ? 10 : 100;
    d->classes_of_format = 1;
    return d;
}
