#include "io/safetensors.h"
#include "common.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

// The byte buffer is copied to and from memory verbatim, so the host must match the format's order.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_DIMS 8
// Larger headers are certainly corrupt (the Python reader caps them at 100 MB too).
#define ST_MAX_HEADER ((uint64_t)100 << 20)
// JSON numbers are doubles; integers beyond 2^53 cannot be represented exactly.
#define ST_MAX_INT 9007199254740992.0

static const char *const dtype_names[] = {"F32", "F64", "F16", "BF16", "I64", "I32", "U8"};
static const size_t dtype_sizes[] = {4, 8, 2, 2, 8, 4, 1};
#define N_DTYPES ((int)(sizeof(dtype_names) / sizeof(dtype_names[0])))

const char *st_dtype_name(StDtype dt) {
    DDM_ASSERT((int)dt >= 0 && (int)dt < N_DTYPES);
    return dtype_names[dt];
}

size_t st_dtype_size(StDtype dt) {
    DDM_ASSERT((int)dt >= 0 && (int)dt < N_DTYPES);
    return dtype_sizes[dt];
}

static int dtype_from_name(const char *s, StDtype *out) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, dtype_names[i]) == 0) { *out = (StDtype)i; return 1; }
    return 0;
}

// "[96, 32]" into out (cap bytes).
static void format_shape(char *out, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(out + k, cap - k, "]");
}

// ---------------------------------------------------------------------------------------------
// Reading

static uint64_t read_u64_le(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static long file_size_of(FILE *fp, const char *path) {
    if (fseek(fp, 0, SEEK_END) != 0) ddm_fatal("%s: cannot seek: %s", path, strerror(errno));
    long size = ftell(fp);
    if (size < 0 || fseek(fp, 0, SEEK_SET) != 0) ddm_fatal("%s: cannot seek: %s", path, strerror(errno));
    return size;
}

static void read_exact(FILE *fp, void *dst, size_t n, const char *path) {
    if (n && fread(dst, 1, n, fp) != n)
        ddm_fatal("%s: read error or file shrank while reading (%zu bytes wanted)", path, n);
}

// A non-negative integer JSON number, else fatal.
static uint64_t json_uint(const cJSON *v, const char *path, const char *tname, const char *field) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= ST_MAX_INT ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        ddm_fatal("%s: tensor '%s': %s must hold non-negative integers", path, tname, field);
    return (uint64_t)v->valuedouble;
}

static void parse_shape(StTensor *t, const cJSON *shape, const char *path) {
    if (!cJSON_IsArray(shape))
        ddm_fatal("%s: tensor '%s': missing or non-array \"shape\"", path, t->name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > ST_MAX_DIMS)
        ddm_fatal("%s: tensor '%s' has %d dimensions, at most %d are supported", path, t->name, nd, ST_MAX_DIMS);
    t->ndim = nd;
    for (int i = 0; i < nd; i++)
        t->shape[i] = (int64_t)json_uint(cJSON_GetArrayItem(shape, i), path, t->name, "\"shape\"");
}

// Byte count implied by shape and dtype, fatal if it overflows.
static uint64_t expected_nbytes(const StTensor *t, const char *path) {
    uint64_t n = st_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (d && n > UINT64_MAX / d) ddm_fatal("%s: tensor '%s': shape is too large", path, t->name);
        n *= d;
    }
    return n;
}

// Fills t from one header entry; *begin/*end receive its offsets into the byte buffer.
static void parse_tensor(StTensor *t, const cJSON *e, size_t bufsize, const char *path,
                         uint64_t *begin, uint64_t *end) {
    if (!cJSON_IsObject(e)) ddm_fatal("%s: header entry '%s' is not an object", path, t->name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt)) ddm_fatal("%s: tensor '%s': missing or non-string \"dtype\"", path, t->name);
    if (!dtype_from_name(dt->valuestring, &t->dtype))
        ddm_fatal("%s: tensor '%s' has unsupported dtype '%s' (supported: F32, F64, F16, BF16, I64, I32, U8)",
                  path, t->name, dt->valuestring);
    parse_shape(t, cJSON_GetObjectItemCaseSensitive(e, "shape"), path);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        ddm_fatal("%s: tensor '%s': \"data_offsets\" must be [begin, end]", path, t->name);
    *begin = json_uint(cJSON_GetArrayItem(off, 0), path, t->name, "\"data_offsets\"");
    *end = json_uint(cJSON_GetArrayItem(off, 1), path, t->name, "\"data_offsets\"");
    if (*begin > *end || *end > bufsize)
        ddm_fatal("%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %zu bytes)",
                  path, t->name, (unsigned long long)*begin, (unsigned long long)*end, bufsize);
    uint64_t want = expected_nbytes(t, path);
    if (*end - *begin != want) {
        char s[160];
        format_shape(s, sizeof s, t->ndim, t->shape);
        ddm_fatal("%s: tensor '%s': data_offsets span %llu bytes but %s %s needs %llu", path, t->name,
                  (unsigned long long)(*end - *begin), st_dtype_name(t->dtype), s,
                  (unsigned long long)want);
    }
    t->nbytes = (size_t)want;
}

static void parse_metadata(StFile *f, const cJSON *m) {
    if (!cJSON_IsObject(m)) ddm_fatal("%s: \"__metadata__\" must be an object of strings", f->path);
    int n = cJSON_GetArraySize(m);
    f->meta_keys = xcalloc((size_t)n, sizeof(char *));
    f->meta_values = xcalloc((size_t)n, sizeof(char *));
    const cJSON *kv;
    cJSON_ArrayForEach(kv, m) {
        if (!cJSON_IsString(kv))
            ddm_fatal("%s: metadata '%s' is not a string (safetensors metadata is {str: str})", f->path, kv->string);
        f->meta_keys[f->n_meta] = xstrdup(kv->string);
        f->meta_values[f->n_meta] = xstrdup(kv->valuestring);
        f->n_meta++;
    }
}

typedef struct { uint64_t begin, end; int idx; } Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

// Two tensors sharing bytes would alias silently; the format forbids it.
static void check_no_overlap(const StFile *f, Span *spans) {
    qsort(spans, (size_t)f->n, sizeof(Span), span_cmp);
    for (int i = 1; i < f->n; i++)
        if (spans[i].begin < spans[i - 1].end)
            ddm_fatal("%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", f->path,
                      f->tensors[spans[i - 1].idx].name, (unsigned long long)spans[i - 1].begin,
                      (unsigned long long)spans[i - 1].end, f->tensors[spans[i].idx].name,
                      (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end);
}

static const StFile *g_sorting;   // qsort has no context argument; st_load is not called concurrently
static int name_cmp(const void *a, const void *b) {
    return strcmp(g_sorting->tensors[*(const int *)a].name, g_sorting->tensors[*(const int *)b].name);
}

// Sorts the names once (n log n) and rejects duplicates, which the sort makes neighbours.
static void index_names(StFile *f) {
    f->by_name = xmalloc((size_t)(f->n ? f->n : 1) * sizeof(int));
    for (int i = 0; i < f->n; i++) f->by_name[i] = i;
    g_sorting = f;
    qsort(f->by_name, (size_t)f->n, sizeof(int), name_cmp);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->tensors[f->by_name[i]].name, f->tensors[f->by_name[i - 1]].name))
            ddm_fatal("%s: tensor '%s' appears twice in the header", f->path, f->tensors[f->by_name[i]].name);
}

static void parse_header(StFile *f, const char *json, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        ddm_fatal("%s: header is not valid JSON (parse error at file byte %ld; header is bytes 8..%zu)", f->path,
                  at ? (long)(at - json) + 8 : -1L, len + 8);
    }
    for (const char *p = end; p < json + len; p++)
        if (*p != ' ' && *p != '\0' && *p != '\n' && *p != '\t' && *p != '\r')
            ddm_fatal("%s: header has trailing garbage after the JSON object", f->path);
    if (!cJSON_IsObject(root)) ddm_fatal("%s: header JSON is not an object", f->path);
    int count = cJSON_GetArraySize(root);
    f->tensors = xcalloc((size_t)count, sizeof(StTensor));
    Span *spans = xcalloc((size_t)count, sizeof(Span));
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (f->meta_keys) ddm_fatal("%s: header has two \"__metadata__\" entries", f->path);
            parse_metadata(f, e);
            continue;
        }
        StTensor *t = &f->tensors[f->n];
        t->name = xstrdup(e->string);
        parse_tensor(t, e, f->size, f->path, &spans[f->n].begin, &spans[f->n].end);
        t->data = (const char *)f->buf + spans[f->n].begin;
        spans[f->n].idx = f->n;
        f->n++;
    }
    index_names(f);
    check_no_overlap(f, spans);
    free(spans);
    cJSON_Delete(root);
}

// Tensors are contiguous in the file, so one written after an odd-sized one (e.g. F32 after 3 bytes
// of U8) starts unaligned, and dereferencing it as float is undefined behaviour. Rare in practice
// (Python's writer orders tensors by alignment), so only then do we copy into an aligned buffer.
static void realign_if_needed(StFile *f) {
    size_t total = 0;
    int misaligned = 0;
    for (int i = 0; i < f->n; i++) {
        const StTensor *t = &f->tensors[i];
        misaligned |= (size_t)((const char *)t->data - (const char *)f->buf) % st_dtype_size(t->dtype) != 0;
        total += (t->nbytes + 7) & ~(size_t)7;
    }
    if (!misaligned) return;
    char *nb = xmalloc(total), *p = nb;
    for (int i = 0; i < f->n; i++) {
        StTensor *t = &f->tensors[i];
        if (t->nbytes) memcpy(p, t->data, t->nbytes);
        t->data = p;
        p += (t->nbytes + 7) & ~(size_t)7;
    }
    free(f->buf);
    f->buf = nb;
    f->size = total;
}

StFile *st_load(const char *path) {
    FILE *fp = xfopen(path, "rb");
    long size = file_size_of(fp, path);
    if (size < 8)
        ddm_fatal("%s: not a safetensors file: %ld bytes, too short for the 8-byte header length", path, size);
    unsigned char lenbuf[8];
    read_exact(fp, lenbuf, 8, path);
    uint64_t hlen = read_u64_le(lenbuf);
    if (hlen > (uint64_t)(size - 8))
        ddm_fatal("%s: truncated or not safetensors: header length %llu exceeds the %ld bytes after it", path,
                  (unsigned long long)hlen, size - 8);
    if (hlen > ST_MAX_HEADER)
        ddm_fatal("%s: header length %llu is implausibly large (limit %llu)", path, (unsigned long long)hlen,
                  (unsigned long long)ST_MAX_HEADER);
    StFile *f = xcalloc(1, sizeof(StFile));
    f->path = xstrdup(path);
    char *json = xmalloc((size_t)hlen + 1);
    read_exact(fp, json, (size_t)hlen, path);
    json[hlen] = '\0';
    // The byte buffer gets its own malloc so float/double tensors are aligned whatever N was.
    f->size = (size_t)((uint64_t)size - 8 - hlen);
    f->buf = xmalloc(f->size);
    read_exact(fp, f->buf, f->size, path);
    fclose(fp);
    parse_header(f, json, (size_t)hlen);
    free(json);
    realign_if_needed(f);
    return f;
}

const StTensor *st_find(const StFile *f, const char *name) {
    int lo = 0, hi = f->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(f->tensors[f->by_name[mid]].name, name);
        if (!c) return &f->tensors[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

const float *st_get_f32(const StFile *f, const char *name, int ndim, const int64_t *shape) {
    const StTensor *t = st_find(f, name);
    if (!t) ddm_fatal("%s: tensor '%s' is missing", f->path, name);
    if (t->dtype != ST_F32)
        ddm_fatal("%s: tensor '%s' has dtype %s, expected F32", f->path, name, st_dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[160], want[160];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        ddm_fatal("%s: tensor '%s' has shape %s, expected %s", f->path, name, got, want);
    }
    return (const float *)t->data;
}

void st_free(StFile *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_values[i]); }
    free(f->tensors);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->buf);
    free(f->path);
    free(f);
}

// ---------------------------------------------------------------------------------------------
// Writing

typedef struct { char *name; StDtype dtype; int ndim; int64_t shape[ST_MAX_DIMS]; size_t nbytes; const void *data; } WTensor;

struct StWriter {
    WTensor *t;
    int n, cap;
    char **keys, **values;
    int n_meta, cap_meta;
};

StWriter *st_writer_new(void) { return xcalloc(1, sizeof(StWriter)); }

void st_writer_add(StWriter *w, const char *name, StDtype dt, int ndim, const int64_t *shape, const void *data) {
    DDM_ASSERT(ndim >= 0 && ndim <= ST_MAX_DIMS);
    DDM_ASSERT(strcmp(name, "__metadata__") != 0);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0) DDM_BUG("safetensors writer: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = xrealloc(w->t, (size_t)w->cap * sizeof(WTensor));
    }
    WTensor *t = &w->t[w->n++];
    t->name = xstrdup(name);
    t->dtype = dt;
    t->ndim = ndim;
    t->nbytes = st_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        DDM_ASSERT(shape[i] >= 0);
        t->shape[i] = shape[i];
        t->nbytes *= (size_t)shape[i];
    }
    t->data = data;
}

void st_writer_meta(StWriter *w, const char *key, const char *value) {
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->keys[i], key) == 0) { free(w->values[i]); w->values[i] = xstrdup(value); return; }
    if (w->n_meta == w->cap_meta) {
        w->cap_meta = w->cap_meta ? 2 * w->cap_meta : 8;
        w->keys = xrealloc(w->keys, (size_t)w->cap_meta * sizeof(char *));
        w->values = xrealloc(w->values, (size_t)w->cap_meta * sizeof(char *));
    }
    w->keys[w->n_meta] = xstrdup(key);
    w->values[w->n_meta] = xstrdup(value);
    w->n_meta++;
}

static cJSON *tensor_entry(const WTensor *t, size_t begin) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "dtype", st_dtype_name(t->dtype));
    cJSON *shape = cJSON_AddArrayToObject(e, "shape");
    for (int i = 0; i < t->ndim; i++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[i]));
    cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)begin));
    cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(begin + t->nbytes)));
    return e;
}

// The header JSON, unpadded; metadata first, then tensors in insertion order.
static char *build_header(const StWriter *w) {
    cJSON *root = cJSON_CreateObject();
    if (w->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < w->n_meta; i++) cJSON_AddStringToObject(m, w->keys[i], w->values[i]);
    }
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        DDM_ASSERT((double)(off + w->t[i].nbytes) < ST_MAX_INT);
        cJSON_AddItemToObject(root, w->t[i].name, tensor_entry(&w->t[i], off));
        off += w->t[i].nbytes;
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) ddm_fatal("out of memory building safetensors header");
    return s;
}

void st_writer_write(StWriter *w, const char *path) {
    char *json = build_header(w);
    size_t len = strlen(json);
    size_t padded = (len + 7) & ~(size_t)7; // keeps the byte buffer 8-aligned in the file
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    AtomicFile af = atomic_open(path);
    fwrite(lenbuf, 1, 8, af.f);
    fwrite(json, 1, len, af.f);
    for (size_t i = len; i < padded; i++) fputc(' ', af.f);
    for (int i = 0; i < w->n; i++)
        if (w->t[i].nbytes) fwrite(w->t[i].data, 1, w->t[i].nbytes, af.f);
    cJSON_free(json);
    atomic_commit(&af);
}

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < w->n_meta; i++) { free(w->keys[i]); free(w->values[i]); }
    free(w->t);
    free(w->keys);
    free(w->values);
    free(w);
}
