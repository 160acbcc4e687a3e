// TensorBoard event files (tfevents.h). The protobuf messages, as tensorflow/core/util/event.proto and
// framework/summary.proto declare the fields used here:
//   Event       { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//                 SessionLog session_log = 6; }
//   SessionLog  { SessionStatus status = 1; }                       (START = 1)
//   Summary     { repeated Value value = 1; }
//   Value       { string tag = 1; float simple_value = 2; Image image = 4; }
//   Image       { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
// Wire format: a key is (field << 3 | type) as a varint; type 0 varint, 1 fixed 64-bit, 2 length-delimited
// (varint length, then the bytes), 5 fixed 32-bit; little-endian fixed values.
#include "io/tfevents.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include "common.h"
#include "io/png.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tfevents.c writes fixed-width fields by memcpy and assumes a little-endian host"
#endif

struct TfEvents {
    FILE *f;
    char *path;
};

// ---------------------------------------------------------------------------------------------
// CRC-32C. Debian packages no C library for it (only python3-crc32c), and the table-driven form is the
// standard one (RFC 3720 appendix B.4): reflected polynomial 0x82F63B78.

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t tfevents_crc32c(const void *data, size_t n) {
    static int ready = 0;
    if (!ready) { crc_init(); ready = 1; }   // idempotent: two threads racing here write the same table
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t tfevents_masked_crc(const void *data, size_t n) {
    uint32_t c = tfevents_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// ---------------------------------------------------------------------------------------------
// protobuf encoding into a growing buffer

typedef struct { unsigned char *p; size_t len, cap; } Buf;

static void put(Buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) b->p = xrealloc(b->p, b->cap = 2 * (b->len + n) + 64);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_varint(Buf *b, uint64_t v) {
    unsigned char tmp[10];
    int k = 0;
    do {
        tmp[k] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) tmp[k] |= 0x80;
        k++;
    } while (v);
    put(b, tmp, (size_t)k);
}

static void put_key(Buf *b, int field, int type) { put_varint(b, (uint64_t)field << 3 | (uint64_t)type); }
static void put_bytes(Buf *b, int field, const void *data, size_t n) {
    put_key(b, field, 2);
    put_varint(b, n);
    put(b, data, n);
}
static void put_int(Buf *b, int field, int64_t v) { put_key(b, field, 0); put_varint(b, (uint64_t)v); }   // int32/int64: two's complement
static void put_double(Buf *b, int field, double v) { put_key(b, field, 1); put(b, &v, 8); }
static void put_float(Buf *b, int field, float v) { put_key(b, field, 5); put(b, &v, 4); }

static double wall_time(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + 1e-6 * tv.tv_usec;
}

// An Event with wall_time and step, then `rest` (already-encoded further fields), as one TFRecord.
static void write_event(TfEvents *t, int64_t step, const Buf *rest) {
    Buf e = {0};
    put_double(&e, 1, wall_time());
    put_int(&e, 2, step);
    if (rest) put(&e, rest->p, rest->len);
    unsigned char head[12];
    uint64_t len = e.len;
    memcpy(head, &len, 8);
    uint32_t c = tfevents_masked_crc(head, 8);
    memcpy(head + 8, &c, 4);
    uint32_t tail = tfevents_masked_crc(e.p, e.len);
    if (fwrite(head, 1, 12, t->f) != 12 || fwrite(e.p, 1, e.len, t->f) != e.len || fwrite(&tail, 1, 4, t->f) != 4)
        ddm_fatal("%s: write failed: %s", t->path, strerror(errno));
    free(e.p);
}

// Event.summary = Summary { value: [v] } around one encoded Value.
static void write_value(TfEvents *t, int64_t step, const Buf *value) {
    Buf summary = {0}, rest = {0};
    put_bytes(&summary, 1, value->p, value->len);
    put_bytes(&rest, 5, summary.p, summary.len);
    write_event(t, step, &rest);
    free(summary.p);
    free(rest.p);
}

// ---------------------------------------------------------------------------------------------

TfEvents *tfevents_open(const char *dir, int64_t start_step) {
    if (make_dirs(dir) != 0) ddm_fatal("%s: cannot create the directory: %s", dir, strerror(errno));
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    for (char *p = host; *p; p++) if (*p == '/') *p = '_';
    TfEvents *t = xcalloc(1, sizeof *t);
    size_t n = strlen(dir) + strlen(host) + 80;
    t->path = xmalloc(n);
    long long now = (long long)wall_time();
    snprintf(t->path, n, "%s/events.out.tfevents.%lld.%s", dir, now, host);
    if (file_exists(t->path))   // two runs started in the same second: keep both
        snprintf(t->path, n, "%s/events.out.tfevents.%lld.%s.%d", dir, now, host, (int)getpid());
    t->f = fopen(t->path, "wb");
    if (!t->f) ddm_fatal("%s: cannot create the TensorBoard event file: %s", t->path, strerror(errno));
    Buf rest = {0};
    put_bytes(&rest, 3, "brain.Event:2", 13);
    write_event(t, 0, &rest);
    free(rest.p);
    if (start_step > 0) {
        Buf log = {0};
        rest = (Buf){0};
        put_int(&log, 1, 1);   // SessionLog.status = START
        put_bytes(&rest, 6, log.p, log.len);
        write_event(t, start_step, &rest);
        free(log.p);
        free(rest.p);
    }
    tfevents_flush(t);
    return t;
}

const char *tfevents_path(const TfEvents *t) { return t->path; }

void tfevents_scalar(TfEvents *t, const char *tag, int64_t step, float value) {
    Buf v = {0};
    put_bytes(&v, 1, tag, strlen(tag));
    put_float(&v, 2, value);
    write_value(t, step, &v);
    free(v.p);
}

void tfevents_image_png(TfEvents *t, const char *tag, int64_t step, const unsigned char *png, size_t len, int height,
                        int width, int colorspace) {
    Buf img = {0}, v = {0};
    put_int(&img, 1, height);
    put_int(&img, 2, width);
    put_int(&img, 3, colorspace);
    put_bytes(&img, 4, png, len);
    put_bytes(&v, 1, tag, strlen(tag));
    put_bytes(&v, 4, img.p, img.len);
    write_value(t, step, &v);
    free(img.p);
    free(v.p);
}

void tfevents_image_grid(TfEvents *t, const char *tag, int64_t step, const float *imgs, int n, int c, int h, int w,
                         int ncols, float lo, float hi) {
    int len, W, H;
    unsigned char *png = png_grid_encode(t->path, imgs, n, c, h, w, ncols, 2, 1, lo, hi, &len, &W, &H);
    tfevents_image_png(t, tag, step, png, (size_t)len, H, W, c);
    free(png);
    tfevents_flush(t);
}

void tfevents_flush(TfEvents *t) {
    if (fflush(t->f) != 0) ddm_fatal("%s: write failed: %s", t->path, strerror(errno));
}

void tfevents_close(TfEvents *t) {
    if (!t) return;
    tfevents_flush(t);
    if (fclose(t->f) != 0) ddm_fatal("%s: write failed: %s", t->path, strerror(errno));
    free(t->path);
    free(t);
}

int tfevents_log_json(TfEvents *t, const char *line, const char *prefix) {
    cJSON *o = cJSON_Parse(line);
    cJSON *step = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
    if (!cJSON_IsObject(o) || !cJSON_IsNumber(step)) { cJSON_Delete(o); return -1; }
    int n = 0;
    for (cJSON *it = o->child; it; it = it->next) {
        if (it == step || !cJSON_IsNumber(it) || !isfinite(it->valuedouble)) continue;
        char tag[256];
        snprintf(tag, sizeof tag, "%s%s", prefix ? prefix : "", it->string);
        tfevents_scalar(t, tag, (int64_t)step->valuedouble, (float)it->valuedouble);
        n++;
    }
    cJSON_Delete(o);
    tfevents_flush(t);   // a line at a time, so a TensorBoard watching the run sees it now
    return n;
}
