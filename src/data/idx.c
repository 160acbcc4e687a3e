// IDX reader (the MNIST/Fashion-MNIST format): big-endian u32 magic 0x000008TD (T = 0x08 for unsigned
// bytes, D = number of dimensions), D big-endian u32 sizes, then the bytes in C order.
#include "data/dataset.h"
#include "common.h"
#include "data/idx.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
// No real IDX file comes close; a larger count means a corrupt header.
#define IDX_MAX_BYTES ((uint64_t)1 << 36)

// gzread with fatal errors; returns the bytes read (fewer than n only at end of file).
static size_t gz_read(gzFile gz, void *dst, size_t n, const char *path) {
    size_t got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(gz, (char *)dst + got, chunk);
        if (r < 0) {
            int err;
            const char *msg = gzerror(gz, &err);
            ddm_fatal("%s: corrupt or unreadable gzip data: %s", path, msg);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

static gzFile gz_open(const char *path) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        xfopen(path, "rb"); // reports the OS error (missing file, permissions)
        ddm_fatal("%s: cannot open", path);
    }
    return gz;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

// Reads the magic and the dimension sizes; fatal unless the magic is `want`. The magic is checked
// before the sizes are read, so a file of the wrong kind is reported as such, not as truncated.
static void read_idx_header(gzFile gz, const char *path, uint32_t want, const char *what, uint32_t *dims) {
    int ndim = (int)(want & 0xff);
    unsigned char b[16];
    size_t need = 4 + 4 * (size_t)ndim;
    size_t got = gz_read(gz, b, 4, path);
    if (got == 4 && be32(b) != want)
        ddm_fatal("%s: bad magic 0x%08x, expected 0x%08x (IDX %s file)", path, be32(b), want, what);
    if (got == 4) got += gz_read(gz, b + 4, need - 4, path);
    if (got < need) ddm_fatal("%s: truncated: %zu bytes, too short for an IDX header (%zu bytes)", path, got, need);
    for (int i = 0; i < ndim; i++) {
        uint32_t v = be32(b + 4 + 4 * i);
        if (v == 0 || v > INT32_MAX)
            ddm_fatal("%s: IDX header has dimension %d = %u, expected a positive size", path, i, v);
        dims[i] = v;
    }
}

// Reads exactly `want` payload bytes and checks that nothing follows. The buffer grows as data arrives,
// so a corrupt header cannot make us allocate more than the file really holds.
static unsigned char *read_payload(gzFile gz, const char *path, uint64_t want, const char *header_desc) {
    size_t cap = want < (1u << 20) ? (size_t)want : (1u << 20), got = 0;
    unsigned char *buf = xmalloc(cap);
    while (got < want) {
        if (got == cap) {
            cap = (uint64_t)cap * 2 > want ? (size_t)want : cap * 2;
            buf = xrealloc(buf, cap);
        }
        size_t r = gz_read(gz, buf + got, cap - got, path);
        got += r;
        if (r == 0) break;
    }
    if (got < want)
        ddm_fatal("%s: truncated: header says %s (%llu bytes) but only %zu bytes follow", path, header_desc,
                  (unsigned long long)want, got);
    unsigned char extra;
    if (gz_read(gz, &extra, 1, path) != 0)
        ddm_fatal("%s: trailing bytes after the %s (%llu bytes) the header describes", path, header_desc,
                  (unsigned long long)want);
    return buf;
}

void idx_images_open(const char *path, IdxImages *im) {
    memset(im, 0, sizeof *im);
    gzFile gz = gz_open(path);
    uint32_t dims[3];
    read_idx_header(gz, path, IDX_IMAGES_MAGIC, "images, 3-d unsigned byte", dims);
    // Three sizes below 2^31 can overflow 64 bits (and wrap to something small): checked, then bounded.
    uint64_t want;
    if (__builtin_mul_overflow((uint64_t)dims[0] * dims[1], (uint64_t)dims[2], &want) || want > IDX_MAX_BYTES)
        ddm_fatal("%s: IDX header says %ux%ux%u bytes, implausibly large", path, dims[0], dims[1], dims[2]);
    char desc[96];
    snprintf(desc, sizeof desc, "%u images of %ux%u", dims[0], dims[1], dims[2]);
    im->n = dims[0];
    im->h = dims[1];
    im->w = dims[2];
    if (gzdirect(gz)) {
        // An uncompressed file is mapped, not copied: memory stays bounded by what is read.
        gzclose(gz);
        im->map = data_map_file(path);
        uint64_t have = im->map.len - 16;
        if (have < want)
            ddm_fatal("%s: truncated: header says %s (%llu bytes) but only %llu bytes follow", path, desc,
                      (unsigned long long)want, (unsigned long long)have);
        if (have > want)
            ddm_fatal("%s: trailing bytes after the %s (%llu bytes) the header describes", path, desc,
                      (unsigned long long)want);
        im->pixels = im->map.p + 16;
        return;
    }
    im->owned = read_payload(gz, path, want, desc);
    im->pixels = im->owned;
    gzclose(gz);
}

void idx_images_close(IdxImages *im) {
    data_unmap_file(&im->map);
    free(im->owned);
    im->pixels = im->owned = NULL;
}

unsigned char *idx_labels_read(const char *path, uint32_t n_images) {
    gzFile gz = gz_open(path);
    uint32_t n;
    read_idx_header(gz, path, IDX_LABELS_MAGIC, "labels, 1-d unsigned byte", &n);
    if (n != n_images)
        ddm_fatal("%s: has %u labels but the image file has %u images", path, n, n_images);
    char desc[64];
    snprintf(desc, sizeof desc, "%u labels", n);
    unsigned char *raw = read_payload(gz, path, n, desc);
    gzclose(gz);
    return raw;
}

static void load_images(Dataset *d, const char *path) {
    IdxImages im;
    idx_images_open(path, &im);
    uint64_t want = (uint64_t)im.n * im.h * im.w;
    d->n = (int)im.n;
    d->c = 1;
    d->h = (int)im.h;
    d->w = (int)im.w;
    d->images = xmalloc((size_t)want * sizeof(float));
    for (uint64_t i = 0; i < want; i++) d->images[i] = idx_pixel(im.pixels[i]);
    idx_images_close(&im);
}

static void load_labels(Dataset *d, const char *path) {
    unsigned char *raw = idx_labels_read(path, (uint32_t)d->n);
    d->labels = xmalloc((size_t)d->n * sizeof(int));
    d->num_classes = 0;
    for (int i = 0; i < d->n; i++) {
        d->labels[i] = raw[i];
        if (raw[i] + 1 > d->num_classes) d->num_classes = raw[i] + 1;
    }
    free(raw);
}

Dataset dataset_load_idx(const char *images_path, const char *labels_path) {
    Dataset d = {0};
    load_images(&d, images_path);
    if (labels_path) load_labels(&d, labels_path);
    return d;
}

// "<dir>/<name>" if it exists, else "<dir>/<name>.gz"; fatal with an install hint if neither does.
static char *find_file(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 8;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    if (file_exists(p)) return p;
    snprintf(p, n, "%s/%s.gz", dir, name);
    if (file_exists(p)) return p;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        ddm_fatal("Fashion-MNIST directory '%s' does not exist (install it with `apt-get install "
                  "dataset-fashion-mnist`, or pass the directory that holds the IDX files)", dir);
    ddm_fatal("missing Fashion-MNIST file '%s/%s' (or '%s/%s.gz'); install it with `apt-get install "
              "dataset-fashion-mnist`", dir, name, dir, name);
}

Dataset dataset_load_fashion_mnist(const char *dir, const char *split) {
    const char *prefix;
    if (strcmp(split, "train") == 0) prefix = "train";
    else if (strcmp(split, "test") == 0) prefix = "t10k";
    else ddm_fatal("unknown Fashion-MNIST split '%s' (expected 'train' or 'test')", split);
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    char *images = find_file(dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    char *labels = find_file(dir, name);
    Dataset d = dataset_load_idx(images, labels);
    free(images);
    free(labels);
    return d;
}

void dataset_free(Dataset *d) {
    free(d->images);
    free(d->labels);
    d->images = NULL;
    d->labels = NULL;
}
