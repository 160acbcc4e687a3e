// Tests for src/io (safetensors, npy, png) and src/data/idx.c: round trips, files laid out byte by byte
// as other tools write them, and every user-caused failure (run in a forked child, since ddm_fatal exits).
#include "common.h"
#include "data/dataset.h"
#include "io/imageset.h"
#include "io/npy.h"
#include "io/npz.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "test.h"
#include <dirent.h>
#include <stb_image.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static char g_dir[64]; // scratch directory, removed at the end

static const char *tmp_path(const char *name) {
    static char bufs[8][256];
    static int k = 0;
    char *p = bufs[k++ % 8];
    snprintf(p, 256, "%s/%s", g_dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = xfopen(path, "wb");
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static unsigned char *read_all(const char *path, long *size) {
    FILE *f = xfopen(path, "rb");
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    unsigned char *b = xmalloc((size_t)*size + 1);
    if (fread(b, 1, (size_t)*size, f) != (size_t)*size) *size = -1;
    fclose(f);
    b[*size > 0 ? *size : 0] = 0;
    return b;
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

// Runs fn(path) in a child; the child must exit with status 1 and print one line to stderr that
// contains `path` (if non-NULL) and `needle`.
static void (*g_child_fn)(const char *);
static const char *g_child_path;
static void child_trampoline(void) { g_child_fn(g_child_path); }

static void expect_fatal(const char *what, void (*fn)(const char *), const char *path, const char *needle) {
    char msg[4096];
    g_child_fn = fn;
    g_child_path = path;
    int status = run_in_child(child_trampoline, msg, sizeof msg), lines = 0;
    for (size_t i = 0; msg[i]; i++) lines += msg[i] == '\n';
    CHECK(status == 1, "%s: expected exit status 1, got %d", what, status);
    CHECK(lines == 1 && strncmp(msg, "ddm: error: ", 12) == 0, "%s: expected one 'ddm: error:' line, got: %s",
          what, msg);
    CHECK(!path || strstr(msg, path), "%s: message does not name the file '%s': %s", what, path, msg);
    CHECK(strstr(msg, needle), "%s: message lacks '%s': %s", what, needle, msg);
}

// ---------------------------------------------------------------------------------------------
// safetensors

static uint64_t header_len_of(const char *path) {
    long size;
    unsigned char *b = read_all(path, &size);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    free(b);
    return v;
}

static void test_safetensors_roundtrip(void) {
    float w[6] = {1.5f, -2.25f, 3, 4, 5e-8f, -6e7f};
    int64_t ids[4] = {-1, 0, 1LL << 40, 7};
    unsigned char u8[5] = {0, 1, 127, 200, 255};
    uint16_t bf[3] = {0x3f80, 0xc000, 0x0000};
    double scalar = 3.141592653589793;
    int64_t sw[2] = {2, 3}, sids[1] = {4}, su8[1] = {5}, sbf[1] = {3}, sempty[2] = {0, 4};
    StWriter *wr = st_writer_new();
    // Deliberately not alphabetical: insertion order must survive.
    st_writer_add(wr, "z.weight", ST_F32, 2, sw, w);
    st_writer_add(wr, "a.ids", ST_I64, 1, sids, ids);
    st_writer_add(wr, "m.bytes", ST_U8, 1, su8, u8);
    st_writer_add(wr, "b.bf16", ST_BF16, 1, sbf, bf);
    st_writer_add(wr, "scalar", ST_F64, 0, NULL, &scalar);
    st_writer_add(wr, "empty", ST_F32, 2, sempty, NULL);
    st_writer_meta(wr, "format", "pt");
    st_writer_meta(wr, "config", "{\"depth\": 6, \"note\": \"quotes \\\" and\\nnewline\"}");
    const char *path = tmp_path("rt.safetensors");
    st_writer_write(wr, path);
    st_writer_free(wr);

    uint64_t hlen = header_len_of(path);
    CHECK(hlen % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)hlen);
    long size;
    unsigned char *raw = read_all(path, &size);
    CHECK(size == (long)(8 + hlen + 24 + 32 + 5 + 6 + 8), "file size %ld", size);
    CHECK(raw[8] == '{', "header starts with '{'");
    long last = 8 + (long)hlen - 1;
    while (raw[last] == ' ') last--;
    CHECK(raw[last] == '}', "header is a JSON object padded with spaces");
    // Data follows the header in insertion order: z.weight first.
    CHECK(memcmp(raw + 8 + hlen, w, sizeof w) == 0, "first tensor's bytes directly follow the header");
    free(raw);

    StFile *f = st_load(path);
    CHECK(f->n == 6, "n = %d", f->n);
    const char *order[6] = {"z.weight", "a.ids", "m.bytes", "b.bf16", "scalar", "empty"};
    for (int i = 0; i < 6 && i < f->n; i++)
        CHECK(strcmp(f->tensors[i].name, order[i]) == 0, "tensor %d is '%s', want '%s'", i, f->tensors[i].name,
              order[i]);
    const float *pw = st_get_f32(f, "z.weight", 2, sw);
    CHECK(memcmp(pw, w, sizeof w) == 0, "f32 values");
    CHECK((uintptr_t)pw % 4 == 0, "f32 data aligned");
    const StTensor *t = st_find(f, "a.ids");
    CHECK(t && t->dtype == ST_I64 && t->ndim == 1 && t->shape[0] == 4 && t->nbytes == 32, "i64 tensor header");
    CHECK(t && memcmp(t->data, ids, sizeof ids) == 0, "i64 values");
    t = st_find(f, "m.bytes");
    CHECK(t && t->dtype == ST_U8 && t->shape[0] == 5 && memcmp(t->data, u8, 5) == 0, "u8 tensor");
    t = st_find(f, "b.bf16");
    CHECK(t && t->dtype == ST_BF16 && t->nbytes == 6 && memcmp(t->data, bf, 6) == 0, "bf16 tensor");
    t = st_find(f, "scalar");
    // In the file it follows 11 bytes of U8/BF16 data, so the loader must have realigned it.
    CHECK(t && (uintptr_t)t->data % 8 == 0, "f64 data realigned");
    CHECK(t && t->dtype == ST_F64 && t->ndim == 0 && t->nbytes == 8 && *(const double *)t->data == scalar,
          "0-d f64 tensor");
    t = st_find(f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4 && t->nbytes == 0, "empty tensor");
    CHECK(st_find(f, "nope") == NULL, "absent tensor -> NULL");
    CHECK(f->n_meta == 2, "n_meta = %d", f->n_meta);
    CHECK(st_meta(f, "format") && strcmp(st_meta(f, "format"), "pt") == 0, "metadata 'format'");
    CHECK(st_meta(f, "config") &&
              strcmp(st_meta(f, "config"), "{\"depth\": 6, \"note\": \"quotes \\\" and\\nnewline\"}") == 0,
          "metadata with quotes and newlines survives");
    CHECK(st_meta(f, "absent") == NULL, "absent metadata -> NULL");
    st_free(f);
}

// A file as another writer might produce it: unpadded header of odd length, keys not in data order.
static void write_st_raw(const char *path, const char *json, const void *data, size_t n) {
    size_t len = strlen(json);
    unsigned char *b = xmalloc(8 + len + n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(b + 8, json, len);
    if (n) memcpy(b + 8 + len, data, n);
    write_bytes(path, b, 8 + len + n);
    free(b);
}

static void test_safetensors_foreign(void) {
    float data[5] = {1, 2, 3, 4, 5};
    const char *path = tmp_path("foreign.safetensors");
    write_st_raw(path,
                 "{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}",
                 data, sizeof data);
    StFile *f = st_load(path);
    int64_t sa[2] = {2, 1}, sb[1] = {3};
    const float *a = st_get_f32(f, "a", 2, sa), *b = st_get_f32(f, "b", 1, sb);
    CHECK(a[0] == 1 && a[1] == 2 && b[0] == 3 && b[2] == 5, "values from an unpadded foreign file");
    CHECK((uintptr_t)a % 4 == 0 && (uintptr_t)b % 4 == 0, "data aligned even with an odd header length");
    CHECK(f->n_meta == 0 && st_meta(f, "x") == NULL, "no metadata");
    st_free(f);
}

static void load_st(const char *path) { st_load(path); }

static const int64_t get_shape_wrong[2] = {3, 2};
static void get_wrong_shape(const char *path) { st_get_f32(st_load(path), "z.weight", 2, get_shape_wrong); }
static void get_missing(const char *path) { st_get_f32(st_load(path), "blocks.0.attn.qkv.weight", 2, get_shape_wrong); }
static void get_wrong_dtype(const char *path) {
    int64_t s[1] = {4};
    st_get_f32(st_load(path), "a.ids", 1, s);
}

static void test_safetensors_errors(void) {
    const char *rt = tmp_path("rt.safetensors");
    expect_fatal("st_get_f32 wrong shape", get_wrong_shape, rt, "tensor 'z.weight' has shape [2, 3], expected [3, 2]");
    expect_fatal("st_get_f32 missing", get_missing, rt, "tensor 'blocks.0.attn.qkv.weight' is missing");
    expect_fatal("st_get_f32 wrong dtype", get_wrong_dtype, rt, "tensor 'a.ids' has dtype I64, expected F32");

    float data[4] = {0};
    const char *p = tmp_path("bad_len.safetensors");
    unsigned char b[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    write_bytes(p, b, sizeof b);
    expect_fatal("safetensors header length > file", load_st, p, "header length 65535 exceeds the 8 bytes");
    write_bytes(p, b, 5);
    expect_fatal("safetensors shorter than 8 bytes", load_st, p, "too short");

    p = tmp_path("bad_json.safetensors");
    write_st_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]", data, sizeof data);
    expect_fatal("safetensors corrupt JSON", load_st, p, "not valid JSON");
    write_st_raw(p, "[1, 2]", NULL, 0);
    expect_fatal("safetensors JSON not an object", load_st, p, "not an object");

    p = tmp_path("bad_offsets.safetensors");
    write_st_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", data, sizeof data);
    expect_fatal("safetensors offsets out of range", load_st, p, "data_offsets [8, 24] out of range");
    write_st_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", data, sizeof data);
    expect_fatal("safetensors offsets vs shape", load_st, p, "span 16 bytes but F32 [3] needs 12");
    write_st_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data, sizeof data);
    expect_fatal("safetensors overlapping tensors", load_st, p, "overlap");
    write_st_raw(p, "{\"a\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,16]}}", data, sizeof data);
    expect_fatal("safetensors unknown dtype", load_st, p, "unsupported dtype 'C64'");
    write_st_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", data, sizeof data);
    expect_fatal("safetensors negative shape", load_st, p, "non-negative integers");
    write_st_raw(p, "{\"__metadata__\":{\"k\":3}}", NULL, 0);
    expect_fatal("safetensors non-string metadata", load_st, p, "metadata 'k' is not a string");
    expect_fatal("safetensors missing file", load_st, tmp_path("does_not_exist.safetensors"), "No such file");
}

// ---------------------------------------------------------------------------------------------
// npy

// Header bytes exactly as numpy 1.x/2.x np.save writes them: magic, version, little-endian header
// length, the dict literal, spaces, '\n', with the total a multiple of 64.
static size_t make_npy(unsigned char *out, int major, const char *dict, const void *data, size_t n) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = (pre + dl + 1 + 63) / 64 * 64, hlen = total - pre;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) out[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', total - pre - dl - 1);
    out[total - 1] = '\n';
    memcpy(out + total, data, n);
    return total + n;
}

static void test_npy_roundtrip(void) {
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)i * 0.5f - 3.0f;
    int64_t s3[3] = {2, 3, 4};
    const char *p = tmp_path("rt.npy");
    npy_save_f32(p, 3, s3, x);
    long size;
    unsigned char *raw = read_all(p, &size);
    CHECK(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0, "npy magic and version 1.0");
    size_t hlen = raw[8] | (size_t)raw[9] << 8;
    CHECK((10 + hlen) % 64 == 0, "data starts at a multiple of 64 (%zu)", 10 + hlen);
    CHECK(raw[10 + hlen - 1] == '\n', "header ends with newline");
    CHECK(strstr((char *)raw + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }") ==
              (char *)raw + 10, "header dict as numpy writes it");
    CHECK(size == (long)(10 + hlen + sizeof x), "npy size");
    free(raw);
    NpyArray a = npy_load_f32(p);
    CHECK(a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 && a.shape[2] == 4, "npy shape");
    CHECK(npy_numel(&a) == 24 && memcmp(a.data, x, sizeof x) == 0, "npy values");
    npy_free(&a);

    int64_t s1[1] = {5};
    npy_save_f32(p, 1, s1, x);
    raw = read_all(p, &size);
    CHECK(strstr((char *)raw + 10, "'shape': (5,), }") != NULL, "1-d shape written as (5,)");
    free(raw);
    a = npy_load_f32(p);
    CHECK(a.ndim == 1 && a.shape[0] == 5 && a.data[4] == x[4], "1-d npy");
    npy_free(&a);

    npy_save_f32(p, 0, NULL, x);
    a = npy_load_f32(p);
    CHECK(a.ndim == 0 && npy_numel(&a) == 1 && a.data[0] == x[0], "0-d npy");
    npy_free(&a);
}

static void test_npy_numpy_files(void) {
    unsigned char buf[512];
    const char *p = tmp_path("np.npy");
    // np.save(p, np.arange(6, dtype='<f4').reshape(2, 3))
    float f4[6] = {0, 1, 2, 3, 4, 5};
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4, sizeof f4);
    CHECK(n == 128 + 24, "hand-made numpy file layout");
    write_bytes(p, buf, n);
    NpyArray a = npy_load_f32(p);
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && memcmp(a.data, f4, sizeof f4) == 0, "<f4 file");
    npy_free(&a);

    double f8[3] = {-1.5, 1e-3, 2.5e10};
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", f8, sizeof f8));
    a = npy_load_f32(p);
    CHECK(a.ndim == 1 && a.shape[0] == 3 && a.data[0] == -1.5f && a.data[1] == 1e-3f && a.data[2] == 2.5e10f,
          "<f8 converted");
    npy_free(&a);

    int64_t i8[2] = {-7, 123456};
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", i8, sizeof i8));
    a = npy_load_f32(p);
    CHECK(a.data[0] == -7.0f && a.data[1] == 123456.0f, "<i8 converted");
    npy_free(&a);

    int32_t i4[2] = {-3, 40};
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }", i4, sizeof i4));
    a = npy_load_f32(p);
    CHECK(a.ndim == 2 && a.data[0] == -3.0f && a.data[1] == 40.0f, "<i4 converted");
    npy_free(&a);

    unsigned char u1[4] = {0, 1, 128, 255};
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", u1, 4));
    a = npy_load_f32(p);
    CHECK(a.data[0] == 0 && a.data[2] == 128 && a.data[3] == 255, "|u1 converted");
    npy_free(&a);
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '|i1', 'fortran_order': False, 'shape': (4,), }", u1, 4));
    a = npy_load_f32(p);
    CHECK(a.data[2] == -128 && a.data[3] == -1, "|i1 converted");
    npy_free(&a);

    // Version 2.0 (4-byte header length), as numpy writes for very large headers.
    write_bytes(p, buf, make_npy(buf, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", f4, sizeof f4));
    a = npy_load_f32(p);
    CHECK(a.ndim == 1 && a.shape[0] == 6 && a.data[5] == 5.0f, "npy v2.0");
    npy_free(&a);
}

static void load_npy(const char *path) { npy_load_f32(path); }

static void test_npy_errors(void) {
    unsigned char buf[512];
    float f4[6] = {0};
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    const char *p = tmp_path("bad.npy");
    write_bytes(p, buf, make_npy(buf, 1, ok, f4, sizeof f4) - 4);
    expect_fatal("npy truncated", load_npy, p, "truncated: header says 6 elements of <f4 (24 bytes) but only 20");
    write_bytes(p, buf, make_npy(buf, 1, ok, f4, sizeof f4) + 0);
    FILE *f = fopen(p, "ab");
    fputc(0, f);
    fclose(f);
    expect_fatal("npy trailing bytes", load_npy, p, "1 unexpected bytes");
    make_npy(buf, 1, ok, f4, sizeof f4);
    buf[1] = 'X';
    write_bytes(p, buf, 152);
    expect_fatal("npy bad magic", load_npy, p, "bad magic");
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4, 24));
    expect_fatal("npy fortran order", load_npy, p, "Fortran order");
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f4, 24));
    expect_fatal("npy big-endian", load_npy, p, "big-endian");
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", f4, 24));
    expect_fatal("npy unsupported dtype", load_npy, p, "dtype '<c8' is not supported");
    write_bytes(p, buf, make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", f4, 24));
    expect_fatal("npy malformed shape", load_npy, p, "'shape' is malformed");
}

// ---------------------------------------------------------------------------------------------
// npz: ZIP archives laid out byte by byte as Python's zipfile writes them for np.savez (each local
// header with numpy's forced ZIP64 extra field of the sizes), and in the full ZIP64 form that large
// arrays get (directory fields saturated to 0xffffffff with the values in ZIP64 extra fields, a ZIP64
// end record and locator before the classic end record).

typedef struct { const char *name; const unsigned char *data; size_t n; int deflate; } ZipMember;

static size_t put_le(unsigned char *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
    return (size_t)n;
}

static size_t deflate_raw(const unsigned char *in, size_t n, unsigned char *out, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int ret = deflate(&z, Z_FINISH);
    size_t k = z.total_out;
    deflateEnd(&z);
    return ret == Z_STREAM_END ? k : 0;
}

static size_t make_zip(unsigned char *out, const ZipMember *m, int count, int zip64) {
    size_t p = 0, offsets[8], comp[8];
    uint32_t crcs[8];
    for (int i = 0; i < count; i++) {
        size_t nl = strlen(m[i].name);
        offsets[i] = p;
        crcs[i] = (uint32_t)crc32(crc32(0, NULL, 0), m[i].data, (uInt)m[i].n);
        p += put_le(out + p, 0x04034b50, 4) + put_le(out + p + 4, 20, 2) + put_le(out + p + 6, 0, 2);
        p += put_le(out + p, m[i].deflate ? 8 : 0, 2) + put_le(out + p + 2, 0x2100, 4);
        p += put_le(out + p, crcs[i], 4);
        size_t sizes_at = p;
        p += 8 + put_le(out + p + 8, nl, 2) + put_le(out + p + 10, 20, 2);
        memcpy(out + p, m[i].name, nl);
        p += nl;
        size_t extra_at = p;
        p += put_le(out + p, 1, 2) + put_le(out + p + 2, 16, 2) + 16;
        comp[i] = m[i].deflate ? deflate_raw(m[i].data, m[i].n, out + p, 4096) : m[i].n;
        if (!m[i].deflate) memcpy(out + p, m[i].data, m[i].n);
        p += comp[i];
        put_le(out + sizes_at, comp[i], 4);
        put_le(out + sizes_at + 4, m[i].n, 4);
        put_le(out + extra_at + 4, m[i].n, 8);
        put_le(out + extra_at + 12, comp[i], 8);
    }
    size_t cd = p;
    for (int i = 0; i < count; i++) {
        size_t nl = strlen(m[i].name);
        uint64_t sat = zip64 ? 0xffffffffu : 0;
        p += put_le(out + p, 0x02014b50, 4) + put_le(out + p + 4, 0x0314, 2) + put_le(out + p + 6, 20, 2);
        p += put_le(out + p, 0, 2) + put_le(out + p + 2, m[i].deflate ? 8 : 0, 2) + put_le(out + p + 4, 0x2100, 4);
        p += put_le(out + p, crcs[i], 4);
        p += put_le(out + p, sat ? sat : comp[i], 4) + put_le(out + p + 4, sat ? sat : m[i].n, 4);
        p += put_le(out + p, nl, 2) + put_le(out + p + 2, zip64 ? 28 : 0, 2) + put_le(out + p + 4, 0, 2);
        p += put_le(out + p, 0, 2) + put_le(out + p + 2, 0, 2) + put_le(out + p + 4, 0x01800000, 4);
        p += put_le(out + p, sat ? sat : offsets[i], 4);
        memcpy(out + p, m[i].name, nl);
        p += nl;
        if (zip64) {
            p += put_le(out + p, 1, 2) + put_le(out + p + 2, 24, 2);
            p += put_le(out + p, m[i].n, 8) + put_le(out + p + 8, comp[i], 8) + put_le(out + p + 16, offsets[i], 8);
        }
    }
    size_t cd_size = p - cd;
    if (zip64) {
        size_t end64 = p;
        p += put_le(out + p, 0x06064b50, 4) + put_le(out + p + 4, 44, 8) + put_le(out + p + 12, 0x032d, 2);
        p += put_le(out + p, 45, 2) + put_le(out + p + 2, 0, 4) + put_le(out + p + 6, 0, 4);
        p += put_le(out + p, count, 8) + put_le(out + p + 8, count, 8);
        p += put_le(out + p, cd_size, 8) + put_le(out + p + 8, cd, 8);
        p += put_le(out + p, 0x07064b50, 4) + put_le(out + p + 4, 0, 4) + put_le(out + p + 8, end64, 8);
        p += put_le(out + p, 1, 4);
    }
    p += put_le(out + p, 0x06054b50, 4) + put_le(out + p + 4, 0, 4);
    p += put_le(out + p, zip64 ? 0xffff : count, 2) + put_le(out + p + 2, zip64 ? 0xffff : count, 2);
    p += put_le(out + p, zip64 ? 0xffffffffu : cd_size, 4) + put_le(out + p + 4, zip64 ? 0xffffffffu : cd, 4);
    p += put_le(out + p, 0, 2);
    return p;
}

static size_t find_bytes(const unsigned char *b, size_t n, const char *needle, size_t len) {
    for (size_t i = 0; i + len <= n; i++)
        if (!memcmp(b + i, needle, len)) return i;
    return (size_t)-1;
}

// Two arrays as np.savez(p, arr_0=images, labels=...) would hold them, labels first: images are
// uint8 [2, 2, 3, 1] (the ADM NHWC layout), labels int64 [2].
static unsigned char g_img_npy[256], g_lab_npy[256];
static size_t g_img_n, g_lab_n;
static const unsigned char g_img_u8[12] = {0, 51, 102, 153, 204, 255, 255, 0, 127, 128, 1, 254};

static size_t make_test_npz(unsigned char *out, int deflate, int zip64) {
    int64_t lab[2] = {3, 7};
    g_img_n = make_npy(g_img_npy, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3, 1), }", g_img_u8, 12);
    g_lab_n = make_npy(g_lab_npy, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", lab, sizeof lab);
    ZipMember m[2] = {{"labels.npy", g_lab_npy, g_lab_n, deflate}, {"arr_0.npy", g_img_npy, g_img_n, deflate}};
    return make_zip(out, m, 2, zip64);
}

static void test_npz(void) {
    unsigned char buf[4096];
    const char *p = tmp_path("a.npz");
    for (int v = 0; v < 4; v++) {
        int deflate = v & 1, zip64 = v >> 1;
        write_bytes(p, buf, make_test_npz(buf, deflate, zip64));
        char chosen[300], want[300];
        NpyArray a = npz_load_f32(p, NULL, chosen, sizeof chosen);
        snprintf(want, sizeof want, "%s:arr_0.npy", p);
        CHECK(a.ndim == 4 && a.shape[0] == 2 && a.shape[3] == 1 && !strcmp(a.descr, "|u1") && a.data[5] == 255 &&
                  a.data[11] == 254 && !strcmp(chosen, want),
              "npz (deflate %d, zip64 %d): the default member is arr_0 (%s)", deflate, zip64, chosen);
        npy_free(&a);
        a = npz_load_f32(p, "labels", NULL, 0);
        CHECK(a.ndim == 1 && a.data[0] == 3 && a.data[1] == 7, "npz (deflate %d, zip64 %d): member by name", deflate,
              zip64);
        npy_free(&a);
        a = npz_load_f32(p, "labels.npy", NULL, 0);
        CHECK(a.ndim == 1 && a.data[1] == 7, "npz: member by name with .npy");
        npy_free(&a);
    }
    // One member of another name: it is the default.
    ZipMember one = {"images.npy", g_lab_npy, g_lab_n, 1};
    write_bytes(p, buf, make_zip(buf, &one, 1, 0));
    NpyArray a = npz_load_f32(p, "", NULL, 0);
    CHECK(a.ndim == 1 && a.data[0] == 3, "npz: without arr_0 the first member is the default");
    npy_free(&a);

    // Image sets: uint8 NHWC -> float NCHW in [-1, 1]; FILE.npz:NAME selects a member.
    write_bytes(p, buf, make_test_npz(buf, 1, 0));
    ImageSet s = imageset_load(p);
    int ok = s.n == 2 && s.c == 1 && s.h == 2 && s.w == 3;
    for (int i = 0; ok && i < 12; i++) ok = s.images[i] == g_img_u8[i] / 127.5f - 1.0f;
    CHECK(ok, "imageset from a uint8 NHWC npz: %dx%dx%dx%d", s.n, s.c, s.h, s.w);
    imageset_free(&s);
    unsigned char rgb[2 * 1 * 2 * 3];
    for (int i = 0; i < 12; i++) rgb[i] = (unsigned char)(20 * i);
    ZipMember m = {"x.npy", g_img_npy, make_npy(g_img_npy, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 2, 3), }", rgb, 12), 0};
    write_bytes(p, buf, make_zip(buf, &m, 1, 0));
    char spec[300];
    snprintf(spec, sizeof spec, "%s:x", p);
    s = imageset_load(spec);
    // image 1, channel 2, pixel (0, 1) of the NCHW result = NHWC element [1, 0, 1, 2] = 6 + 3 + 2 = 11
    CHECK(s.n == 2 && s.c == 3 && s.h == 1 && s.w == 2 && s.images[(1 * 3 + 2) * 2 + 1] == 220 / 127.5f - 1.0f,
          "imageset: RGB NHWC transposed to NCHW (%dx%dx%dx%d)", s.n, s.c, s.h, s.w);
    imageset_free(&s);
}

static const char *g_member;
static void load_npz(const char *path) { npz_load_f32(path, g_member, NULL, 0); }
static void load_images(const char *path) { imageset_load(path); }

static void test_npz_errors(void) {
    unsigned char buf[4096], bad[4096];
    const char *p = tmp_path("bad.npz");
    size_t n = make_test_npz(buf, 0, 0);
    size_t img = find_bytes(buf, n, "arr_0.npy", 9) + 9 + 20; // data of the stored arr_0 member
    write_bytes(p, buf, n - 7);
    expect_fatal("npz truncated", load_npz, p, "no end-of-central-directory record");
    write_bytes(p, buf, 10);
    expect_fatal("npz too short", load_npz, p, "too short");
    memcpy(bad, buf, n);
    bad[img + 130] ^= 1;
    write_bytes(p, bad, n);
    expect_fatal("npz CRC", load_npz, p, "CRC-32 mismatch");
    memcpy(bad, buf, n);
    bad[find_bytes(buf, n, "PK\x03\x04", 4) + 1] ^= 1; // the first member's local header: labels
    write_bytes(p, bad, n);
    g_member = "labels";
    expect_fatal("npz bad local signature", load_npz, p, "bad local-file-header signature");
    g_member = "images";
    write_bytes(p, buf, n);
    expect_fatal("npz missing member", load_npz, p, "no array 'images' (it holds: labels, arr_0)");
    g_member = NULL;
    memcpy(bad, buf, n);
    size_t cd = find_bytes(buf, n, "PK\x01\x02", 4);
    bad[find_bytes(bad + cd + 4, n - cd - 4, "PK\x01\x02", 4) + cd + 4 + 10] = 12; // arr_0: bzip2
    write_bytes(p, bad, n);
    expect_fatal("npz unsupported method", load_npz, p, "compression method 12 is not supported");
    memcpy(bad, buf, n);
    bad[cd] = 'X';
    write_bytes(p, bad, n);
    expect_fatal("npz bad directory signature", load_npz, p, "bad signature of central-directory entry 0");
    memcpy(bad, buf, n);
    bad[n - 6] = 0xff; // central directory offset beyond the file
    write_bytes(p, bad, n);
    expect_fatal("npz directory offset", load_npz, p, "overlaps the end record");

    n = make_test_npz(buf, 1, 0);
    img = find_bytes(buf, n, "arr_0.npy", 9) + 9 + 20;
    memcpy(bad, buf, n);
    bad[img] = 0xff; // a reserved deflate block type
    write_bytes(p, bad, n);
    expect_fatal("npz corrupt deflate", load_npz, p, "corrupt deflate data");
    memcpy(bad, buf, n);
    cd = find_bytes(buf, n, "PK\x01\x02", 4);
    size_t e1 = find_bytes(bad + cd + 4, n - cd - 4, "PK\x01\x02", 4) + cd + 4;
    put_le(bad + e1 + 24, g_img_n + 1, 4); // arr_0 declares one byte more than it inflates to
    write_bytes(p, bad, n);
    expect_fatal("npz size mismatch", load_npz, p, "inflates to");
    write_bytes(p, buf, n);
    char spec[300];
    snprintf(spec, sizeof spec, "%s:labels", p);
    expect_fatal("npz member that is not images", load_images, spec, "expected an array of images [N, C, H, W]");
    snprintf(spec, sizeof spec, "%s:arr_0", tmp_path("none.npz"));
    expect_fatal("npz member of a missing file", load_images, spec, "none.npz')");
}

// ---------------------------------------------------------------------------------------------
// png

static uint32_t be32(const unsigned char *b) { return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]; }

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static void test_png(void) {
    // 5 grey images of 4x3 in 3 columns, pad 1, scale 2: 3*(6+1)+1 = 22 wide, 2*(8+1)+1 = 19 high.
    float imgs[5 * 12];
    for (int i = 0; i < 60; i++) imgs[i] = (float)(i % 12) / 11.0f * 2.0f - 1.0f;
    imgs[0] = -5.0f; // clamped to 0
    imgs[11] = 9.0f; // clamped to 255
    const char *p = tmp_path("grid.png");
    png_write_grid(p, imgs, 5, 1, 4, 3, 3, 1, 2, -1.0f, 1.0f);
    long size;
    unsigned char *raw = read_all(p, &size);
    CHECK(size > 33 && memcmp(raw, "\x89PNG\r\n\x1a\n", 8) == 0, "PNG signature");
    CHECK(memcmp(raw + 12, "IHDR", 4) == 0, "IHDR first");
    CHECK(be32(raw + 16) == 22 && be32(raw + 20) == 19, "IHDR size %ux%u, want 22x19", be32(raw + 16),
          be32(raw + 20));
    CHECK(raw[24] == 8 && raw[25] == 0, "8-bit greyscale");
    free(raw);
    int w, h, c;
    unsigned char *px = stbi_load(p, &w, &h, &c, 0);
    CHECK(px && w == 22 && h == 19 && c == 1, "decodes as 22x19 grey");
    if (px) {
        CHECK(px[0] == 128 && px[21] == 128 && px[18 * 22] == 128, "border is mid-grey");
        CHECK(px[1 * 22 + 1] == 0 && px[2 * 22 + 2] == 0, "clamped low pixel, scaled 2x2");
        // Image 0 pixel (row 3, col 2) = index 11 -> 255, at canvas (1 + 6..7, 1 + 4..5).
        CHECK(px[7 * 22 + 5] == 255 && px[8 * 22 + 6] == 255, "clamped high pixel");
        // Image 4 sits in row 1, column 1: origin (8, 10); its pixel 1 = 1/11*2-1 -> 255/11 = 23.
        CHECK(px[10 * 22 + 8 + 2] == 23, "second-row image pixel = %d, want 23", px[10 * 22 + 10]);
        CHECK(px[10 * 22 + 15] == 128, "empty cell after the last image stays border-coloured");
        stbi_image_free(px);
    }

    float rgb[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++) rgb[i] = (i / 4) % 3 == 0 ? 1.0f : 0.0f; // red in channel 0
    p = tmp_path("rgb.png");
    png_write_grid(p, rgb, 2, 3, 2, 2, 4, 0, 1, 0.0f, 1.0f);
    px = stbi_load(p, &w, &h, &c, 0);
    CHECK(px && w == 4 && h == 2 && c == 3, "RGB grid %dx%d c=%d, want 4x2 c=3 (ncols capped at n)", w, h, c);
    if (px) {
        CHECK(px[0] == 255 && px[1] == 0 && px[2] == 0, "RGB pixel is red");
        stbi_image_free(px);
    }
}

static void png_two_channels(const char *path) {
    float x[2 * 2 * 3 * 3] = {0};
    png_write_grid(path, x, 2, 2, 3, 3, 2, 1, 1, -1, 1);
}

static void test_png_errors(void) {
    char sub[128];
    snprintf(sub, sizeof sub, "%s/pngfail", g_dir);
    mkdir(sub, 0700);
    char p[160];
    snprintf(p, sizeof p, "%s/x.png", sub);
    expect_fatal("png with 2 channels", png_two_channels, p, "2 channels");
    CHECK(count_dir_entries(sub) == 0, "failed png write leaves no file or temp file behind");
    rmdir(sub);
}

static void read_png(const char *path) { int w, h, c; png_read(path, &w, &h, &c); }

// png_read decodes what png_write_grid wrote, and checks the chunk structure before decoding.
static void test_png_read(void) {
    float rgb[2 * 3 * 4 * 5];
    for (int i = 0; i < 120; i++) rgb[i] = (float)(i % 7) / 3.0f - 1.0f;
    const char *p = tmp_path("read.png"), *q = tmp_path("broken.png");
    png_write_grid(p, rgb, 2, 3, 4, 5, 2, 1, 1, -1.0f, 1.0f);
    int w, h, c, w2, h2, c2;
    unsigned char *a = png_read(p, &w, &h, &c), *b = stbi_load(p, &w2, &h2, &c2, 0);
    CHECK(b && w == w2 && h == h2 && c == c2 && w == 13 && c == 3 && !memcmp(a, b, (size_t)w * h * c),
          "png_read: %dx%dx%d, the same pixels as stb_image", w, h, c);
    free(a);
    stbi_image_free(b);
    long size;
    unsigned char *raw = read_all(p, &size);
    write_bytes(q, raw, (size_t)size - 12);
    expect_fatal("png without IEND", read_png, q, "no IEND chunk");
    write_bytes(q, raw, (size_t)size - 30);
    expect_fatal("png truncated in IDAT", read_png, q, "chunk 'IDAT'");
    raw[size - 20] ^= 0x10;
    write_bytes(q, raw, (size_t)size);
    expect_fatal("png flipped bit", read_png, q, "CRC-32 mismatch in chunk 'IDAT'");
    raw[size - 20] ^= 0x10;
    raw[0] = 'X';
    write_bytes(q, raw, (size_t)size);
    expect_fatal("png signature", read_png, q, "bad signature");
    raw[0] = 0x89;
    memcpy(raw + 12, "IHDX", 4);
    uint32_t crc = (uint32_t)crc32(0, raw + 12, 17);
    put_be32(raw + 29, crc);
    write_bytes(q, raw, (size_t)size);
    expect_fatal("png without IHDR", read_png, q, "not IHDR");
    free(raw);
}

// ---------------------------------------------------------------------------------------------
// IDX

// 3 images of 2x4 (pixel i of image k = 10*k + 30*i mod 256) and labels {2, 0, 5}.
static size_t make_idx_images(unsigned char *b) {
    put_be32(b, 0x803);
    put_be32(b + 4, 3);
    put_be32(b + 8, 2);
    put_be32(b + 12, 4);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 8; i++) b[16 + k * 8 + i] = (unsigned char)((10 * k + 30 * i) % 256);
    b[16] = 255;
    return 16 + 24;
}
static size_t make_idx_labels(unsigned char *b) {
    put_be32(b, 0x801);
    put_be32(b + 4, 3);
    b[8] = 2, b[9] = 0, b[10] = 5;
    return 11;
}

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile gz = gzopen(path, "wb");
    gzwrite(gz, data, (unsigned)n);
    gzclose(gz);
}

static void check_small_idx(const Dataset *d, const char *what) {
    CHECK(d->n == 3 && d->c == 1 && d->h == 2 && d->w == 4, "%s: dims %d %d %d %d", what, d->n, d->c, d->h, d->w);
    CHECK(d->images[0] == 1.0f, "%s: 255 -> 1", what);
    CHECK(fabsf(d->images[1] - (30.0f / 255 * 2 - 1)) < 1e-6f, "%s: 30 -> x/255*2-1", what);
    CHECK(d->images[8] == (10.0f / 255 * 2 - 1), "%s: image 1 first pixel", what);
    CHECK(d->labels && d->labels[0] == 2 && d->labels[1] == 0 && d->labels[2] == 5, "%s: labels", what);
    CHECK(d->num_classes == 6, "%s: num_classes %d", what, d->num_classes);
}

static void test_idx(void) {
    unsigned char im[64], lb[16];
    size_t ni = make_idx_images(im), nl = make_idx_labels(lb);
    write_bytes(tmp_path("im.idx"), im, ni);
    write_bytes(tmp_path("lb.idx"), lb, nl);
    Dataset d = dataset_load_idx(tmp_path("im.idx"), tmp_path("lb.idx"));
    check_small_idx(&d, "raw");
    dataset_free(&d);
    write_gz(tmp_path("im.idx.gz"), im, ni);
    write_gz(tmp_path("lb.idx.gz"), lb, nl);
    d = dataset_load_idx(tmp_path("im.idx.gz"), tmp_path("lb.idx.gz"));
    check_small_idx(&d, "gz");
    dataset_free(&d);
    d = dataset_load_idx(tmp_path("im.idx.gz"), NULL);
    CHECK(d.n == 3 && d.labels == NULL && d.num_classes == 0, "no labels");
    dataset_free(&d);

    // A Fashion-MNIST-shaped directory holding a raw train pair is found by name.
    char sub[128];
    snprintf(sub, sizeof sub, "%s/fm", g_dir);
    mkdir(sub, 0700);
    char a[192], b[192];
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", sub);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", sub);
    write_bytes(a, im, ni);
    write_gz(b, lb, nl);
    d = dataset_load_fashion_mnist(sub, "train");
    check_small_idx(&d, "fashion dir");
    dataset_free(&d);
    unlink(a);
    unlink(b);
    rmdir(sub);
}

static void load_images_only(const char *path) { dataset_load_idx(path, NULL); }
static void load_with_labels(const char *path) { dataset_load_idx(tmp_path("im.idx"), path); }
static void load_fashion_dir(const char *dir) { dataset_load_fashion_mnist(dir, "train"); }
static void load_fashion_split(const char *dir) { dataset_load_fashion_mnist(dir, "validation"); }

static void test_idx_errors(void) {
    unsigned char im[64], lb[16];
    size_t ni = make_idx_images(im), nl = make_idx_labels(lb);
    const char *p = tmp_path("trunc.idx");
    write_bytes(p, im, ni - 5);
    expect_fatal("idx truncated", load_images_only, p,
                 "truncated: header says 3 images of 2x4 (24 bytes) but only 19 bytes follow");
    p = tmp_path("trunc.idx.gz");
    write_gz(p, im, ni - 5);
    expect_fatal("idx.gz truncated data", load_images_only, p, "but only 19 bytes follow");
    long size;
    unsigned char *gzb = read_all(p, &size);
    write_bytes(p, gzb, (size_t)size - 6); // cut into the gzip trailer/stream itself
    free(gzb);
    expect_fatal("idx.gz truncated stream", load_images_only, p, "");
    write_bytes(p = tmp_path("short_header.idx"), im, 10);
    expect_fatal("idx short header", load_images_only, p, "too short for an IDX header");
    im[ni] = 7;
    write_bytes(p = tmp_path("trailing.idx"), im, ni + 1);
    expect_fatal("idx trailing garbage", load_images_only, p, "trailing bytes");
    expect_fatal("idx bad magic (labels as images)", load_images_only, tmp_path("lb.idx"),
                 "bad magic 0x00000801, expected 0x00000803");
    expect_fatal("idx bad magic (images as labels)", load_with_labels, tmp_path("im.idx"),
                 "bad magic 0x00000803, expected 0x00000801");
    put_be32(lb + 4, 4);
    lb[11] = 1;
    write_bytes(p = tmp_path("lb4.idx"), lb, nl + 1);
    expect_fatal("idx label count mismatch", load_with_labels, p, "has 4 labels but the image file has 3 images");
    make_idx_images(im);
    put_be32(im + 8, 0);
    write_bytes(p = tmp_path("zero.idx"), im, ni);
    expect_fatal("idx zero dimension", load_images_only, p, "expected a positive size");
    expect_fatal("idx missing file", load_images_only, tmp_path("nope.idx"), "No such file");
    expect_fatal("fashion-mnist missing dir", load_fashion_dir, tmp_path("no_such_dir"),
                 "apt-get install dataset-fashion-mnist");
    expect_fatal("fashion-mnist missing file", load_fashion_dir, g_dir, "train-images-idx3-ubyte");
    expect_fatal("fashion-mnist bad split", load_fashion_split, NULL, "unknown Fashion-MNIST split 'validation'");
}

static void test_fashion_mnist_real(void) {
    if (!file_exists(DDM_FASHION_MNIST_DIR)) {
        printf("skipping real Fashion-MNIST: %s not present\n", DDM_FASHION_MNIST_DIR);
        return;
    }
    Dataset d = dataset_load_fashion_mnist(DDM_FASHION_MNIST_DIR, "train");
    CHECK(d.n == 60000 && d.c == 1 && d.h == 28 && d.w == 28, "train dims %d %d %d %d", d.n, d.c, d.h, d.w);
    CHECK(d.num_classes == 10, "num_classes %d", d.num_classes);
    int bad_label = 0, count[10] = {0};
    for (int i = 0; i < d.n; i++) {
        if (d.labels[i] < 0 || d.labels[i] > 9) bad_label++;
        else count[d.labels[i]]++;
    }
    CHECK(bad_label == 0, "%d labels out of range", bad_label);
    CHECK(count[0] == 6000 && count[9] == 6000, "Fashion-MNIST train has 6000 of each class");
    float lo = 1e9f, hi = -1e9f;
    for (long i = 0; i < (long)d.n * 784; i++) {
        if (d.images[i] < lo) lo = d.images[i];
        if (d.images[i] > hi) hi = d.images[i];
    }
    CHECK(lo == -1.0f && hi == 1.0f, "pixel range [%g, %g], want [-1, 1]", lo, hi);
    dataset_free(&d);
    d = dataset_load_fashion_mnist(DDM_FASHION_MNIST_DIR, "test");
    CHECK(d.n == 10000 && d.num_classes == 10, "test split %d images", d.n);
    dataset_free(&d);
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    char p[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/ddm_test_io_XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 2; }
    test_safetensors_roundtrip();
    test_safetensors_foreign();
    test_safetensors_errors();
    test_npy_roundtrip();
    test_npy_numpy_files();
    test_npy_errors();
    test_npz();
    test_npz_errors();
    test_png();
    test_png_errors();
    test_png_read();
    test_idx();
    test_idx_errors();
    test_fashion_mnist_real();
    remove_dir(g_dir);
    TEST_MAIN_END();
}
