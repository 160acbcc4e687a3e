#include "io/npy.h"
#include "common.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

#define NPY_MAX_DIMS 8
static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

typedef enum { NPY_F4, NPY_F8, NPY_I8, NPY_I4, NPY_U1, NPY_I1 } NpyKind;
static const struct { const char *descr; NpyKind kind; int size; } npy_dtypes[] = {
    {"<f4", NPY_F4, 4}, {"<f8", NPY_F8, 8}, {"<i8", NPY_I8, 8},
    {"<i4", NPY_I4, 4}, {"|u1", NPY_U1, 1}, {"|i1", NPY_I1, 1},
};
#define N_NPY_DTYPES ((int)(sizeof(npy_dtypes) / sizeof(npy_dtypes[0])))

int64_t npy_numel(const NpyArray *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
}

void npy_free(NpyArray *a) {
    free(a->data);
    a->data = NULL;
}

// ---------------------------------------------------------------------------------------------
// Header parsing. The header is a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }; we read just the three keys we need.

static const char *skip_ws(const char *p) {
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}

// Points just past "'key':" (either quote style), or NULL if the key is absent.
static const char *find_key(const char *hdr, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = hdr; (p = strpbrk(p, "'\"")) != NULL; p++) {
        if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == p[0]) {
            const char *q = skip_ws(p + 2 + klen);
            if (*q == ':') return skip_ws(q + 1);
        }
    }
    return NULL;
}

static int parse_descr(const char *hdr, const char *path) {
    const char *p = find_key(hdr, "descr");
    if (!p || (*p != '\'' && *p != '"'))
        ddm_fatal("%s: npy header has no string 'descr' (structured dtypes are not supported)", path);
    const char *end = strchr(p + 1, *p);
    if (!end) ddm_fatal("%s: npy header 'descr' string is not terminated", path);
    char d[32];
    size_t n = (size_t)(end - p - 1);
    if (n >= sizeof d) ddm_fatal("%s: npy dtype '%.*s' is not supported", path, (int)n, p + 1);
    memcpy(d, p + 1, n);
    d[n] = '\0';
    for (int i = 0; i < N_NPY_DTYPES; i++)
        if (strcmp(d, npy_dtypes[i].descr) == 0) return i;
    if (d[0] == '>')
        ddm_fatal("%s: npy dtype '%s' is big-endian; re-save it little-endian (e.g. a.astype('<f4'))", path, d);
    ddm_fatal("%s: npy dtype '%s' is not supported (expected <f4, <f8, <i8, <i4, |u1 or |i1)", path, d);
}

static void parse_fortran(const char *hdr, const char *path) {
    const char *p = find_key(hdr, "fortran_order");
    if (!p) ddm_fatal("%s: npy header has no 'fortran_order'", path);
    if (strncmp(p, "True", 4) == 0)
        ddm_fatal("%s: npy array is in Fortran order; save it in C order (np.ascontiguousarray)", path);
    if (strncmp(p, "False", 5) != 0) ddm_fatal("%s: npy header 'fortran_order' is neither True nor False", path);
}

static void parse_shape(const char *hdr, NpyArray *a, const char *path) {
    const char *p = find_key(hdr, "shape");
    if (!p || *p != '(') ddm_fatal("%s: npy header has no 'shape' tuple", path);
    p = skip_ws(p + 1);
    a->ndim = 0;
    while (*p != ')') {
        if (!isdigit((unsigned char)*p)) ddm_fatal("%s: npy header 'shape' is malformed", path);
        if (a->ndim == NPY_MAX_DIMS) ddm_fatal("%s: npy array has more than %d dimensions", path, NPY_MAX_DIMS);
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno) ddm_fatal("%s: npy header 'shape' has an out-of-range dimension", path);
        a->shape[a->ndim++] = v;
        p = skip_ws(end);
        if (*p == ',') p = skip_ws(p + 1);
        else if (*p != ')') ddm_fatal("%s: npy header 'shape' is malformed", path);
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

static uint32_t read_le(const unsigned char *b, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

// Parses the preamble and header of buf; returns the header text (NUL-terminated) and the bytes consumed.
static char *read_header(const unsigned char *buf, size_t size, const char *what, size_t *consumed) {
    if (size < 10 || memcmp(buf, npy_magic, 6) != 0)
        ddm_fatal("%s: not a .npy file (bad magic; expected \\x93NUMPY)", what);
    int major = buf[6];
    if (major < 1 || major > 3)
        ddm_fatal("%s: unsupported .npy format version %d.%d (expected 1.0, 2.0 or 3.0)", what, major, buf[7]);
    size_t pre_len = major == 1 ? 10 : 12;
    if (size < pre_len) ddm_fatal("%s: truncated .npy preamble", what);
    uint32_t hlen = read_le(buf + 8, major == 1 ? 2 : 4);
    if (hlen > (1u << 24)) ddm_fatal("%s: .npy header length %u is implausibly large", what, hlen);
    if (size - pre_len < hlen) ddm_fatal("%s: truncated .npy header (%u bytes expected)", what, hlen);
    char *hdr = xmalloc(hlen + 1);
    memcpy(hdr, buf + pre_len, hlen);
    hdr[hlen] = '\0';
    *consumed = pre_len + hlen;
    return hdr;
}

static void convert(float *dst, const unsigned char *src, int64_t n, NpyKind kind) {
    for (int64_t i = 0; i < n; i++) {
        switch (kind) { // memcpy: the source may be unaligned
        case NPY_F8: { double v; memcpy(&v, src + 8 * i, 8); dst[i] = (float)v; break; }
        case NPY_I8: { int64_t v; memcpy(&v, src + 8 * i, 8); dst[i] = (float)v; break; }
        case NPY_I4: { int32_t v; memcpy(&v, src + 4 * i, 4); dst[i] = (float)v; break; }
        case NPY_U1: dst[i] = (float)src[i]; break;
        case NPY_I1: dst[i] = (float)(int8_t)src[i]; break;
        case NPY_F4: { memcpy(dst + i, src + 4 * i, 4); break; }
        }
    }
}

NpyArray npy_parse_f32(const unsigned char *buf, size_t size, const char *what) {
    size_t consumed;
    char *hdr = read_header(buf, size, what, &consumed);
    NpyArray a = {0};
    int dt = parse_descr(hdr, what);
    parse_fortran(hdr, what);
    parse_shape(hdr, &a, what);
    free(hdr);
    memcpy(a.descr, npy_dtypes[dt].descr, 4);
    // Compare against the data size before allocating, so a corrupt shape cannot demand terabytes.
    int64_t n = 1;
    for (int i = 0; i < a.ndim; i++) {
        if (a.shape[i] && n > INT64_MAX / 8 / a.shape[i]) ddm_fatal("%s: npy shape is too large", what);
        n *= a.shape[i];
    }
    int64_t want = n * npy_dtypes[dt].size, have = (int64_t)(size - consumed);
    if (have < want)
        ddm_fatal("%s: truncated: header says %lld elements of %s (%lld bytes) but only %lld bytes follow", what,
                  (long long)n, npy_dtypes[dt].descr, (long long)want, (long long)have);
    if (have > want)
        ddm_fatal("%s: %lld unexpected bytes after the %lld data bytes the header describes", what,
                  (long long)(have - want), (long long)want);
    a.data = xmalloc((size_t)n * sizeof(float));
    convert(a.data, buf + consumed, n, npy_dtypes[dt].kind);
    return a;
}

NpyArray npy_load_f32(const char *path) {
    FILE *fp = xfopen(path, "rb");
    if (fseeko(fp, 0, SEEK_END) != 0) ddm_fatal("%s: cannot seek: %s", path, strerror(errno));
    off_t size = ftello(fp);
    rewind(fp);
    unsigned char *raw = xmalloc(size > 0 ? (size_t)size : 1);
    if (size > 0 && fread(raw, 1, (size_t)size, fp) != (size_t)size) ddm_fatal("%s: read error", path);
    fclose(fp);
    NpyArray a = npy_parse_f32(raw, (size_t)size, path);
    free(raw);
    return a;
}

// ---------------------------------------------------------------------------------------------
// Saving

void npy_save_f32(const char *path, int ndim, const int64_t *shape, const float *data) {
    DDM_ASSERT(ndim >= 0 && ndim <= NPY_MAX_DIMS);
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
        n *= shape[i];
    }
    if (ndim > 1) k--; // numpy writes (3,) for one dim but (3, 4) without the trailing comma
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    // Pad with spaces and end with '\n' so that magic + version + length + header is a multiple of 64.
    int total = (10 + k + 1 + 63) / 64 * 64;
    int hlen = total - 10;
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    AtomicFile af = atomic_open(path);
    fwrite(pre, 1, 10, af.f);
    fwrite(dict, 1, (size_t)k, af.f);
    for (int i = 10 + k; i < total - 1; i++) fputc(' ', af.f);
    fputc('\n', af.f);
    if (n) fwrite(data, sizeof(float), (size_t)n, af.f);
    atomic_commit(&af);
}

// ---------------------------------------------------------------------------------------------
// Header only (for arrays that are memory-mapped rather than loaded)

NpyHeader npy_parse_header(const unsigned char *buf, size_t size, const char *what) {
    size_t consumed;
    char *hdr = read_header(buf, size, what, &consumed);
    NpyHeader h = {0};
    NpyArray a = {0};
    int dt = parse_descr(hdr, what);
    parse_fortran(hdr, what);
    parse_shape(hdr, &a, what);
    free(hdr);
    h.ndim = a.ndim;
    memcpy(h.shape, a.shape, sizeof h.shape);
    memcpy(h.descr, npy_dtypes[dt].descr, 4);
    h.item_size = npy_dtypes[dt].size;
    h.data_offset = consumed;
    uint64_t n = 1;
    for (int i = 0; i < a.ndim; i++)
        if (__builtin_mul_overflow(n, (uint64_t)a.shape[i], &n) || n > (uint64_t)INT64_MAX / 8)
            ddm_fatal("%s: npy shape is too large", what);
    h.data_bytes = n * (uint64_t)h.item_size;
    return h;
}
