// TensorBoard event files (src/io/tfevents.h): CRC-32C test vectors, then events written by the C API and
// read back by tools/tfevents_read.py — an independent reader (python3-protobuf with TensorFlow's message
// declarations, its own bitwise CRC-32C) — checking every record's CRCs, tags, steps, values and the PNG
// bytes; TensorBoard's own reader too where it is installed.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include "test.h"
#include "common.h"
#include "io/png.h"
#include "io/tfevents.h"

static char g_dir[64];

static char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    rewind(f);
    char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != (size_t)*n) *n = -1;
    b[*n > 0 ? *n : 0] = 0;
    fclose(f);
    return b;
}

// The one event file in dir (its name: events.out.tfevents.<digits>.<host>).
static int event_file(const char *dir, char *out, size_t cap) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "events.out.tfevents.", 20)) { snprintf(out, cap, "%s/%s", dir, e->d_name); n++; }
    closedir(d);
    return n;
}

static cJSON *read_back(const char *file, const char *json, const char *dump) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/tfevents_read.py %s --json %s --dump-images %s --tensorboard > %s.log 2>&1",
             file, json, dump, json);
    int rc = system(cmd);
    CHECK(rc == 0, "tools/tfevents_read.py failed on %s (see %s.log)", file, json);
    long n;
    char *s = slurp(json, &n);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    free(s);
    CHECK(j && cJSON_IsArray(j), "reader output %s", json);
    return j;
}

static cJSON *value0(cJSON *ev) { return cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "values"), 0); }

static void test_crc(void) {
    CHECK(tfevents_crc32c("123456789", 9) == 0xE3069283u, "CRC-32C check value: %08x", tfevents_crc32c("123456789", 9));
    unsigned char zeros[32] = {0};
    CHECK(tfevents_crc32c(zeros, 32) == 0x8A9136AAu, "CRC-32C of 32 zero bytes (RFC 3720 B.4)");
    uint32_t c = 0xE3069283u;
    CHECK(tfevents_masked_crc("123456789", 9) == (((c >> 15) | (c << 17)) + 0xa282ead8u), "mask");
}

static void test_roundtrip(void) {
    char dir[128], file[512], json[256], dump[256];
    snprintf(dir, sizeof dir, "%s/run", g_dir);
    TfEvents *t = tfevents_open(dir, 0);
    CHECK(event_file(dir, file, sizeof file) == 1 && !strcmp(file, tfevents_path(t)), "one event file: %s", file);
    const float loss[3] = {0.5f, 0.25f, -1.75e-3f};
    for (int s = 0; s < 3; s++) tfevents_scalar(t, "loss", 10 * (s + 1), loss[s]);
    tfevents_scalar(t, "train/lr", 30, 1e-4f);
    float imgs[4 * 5 * 5];
    for (int i = 0; i < 100; i++) imgs[i] = (float)(i % 17) / 8 - 1;
    tfevents_image_grid(t, "samples", 30, imgs, 4, 1, 5, 5, 2, -1, 1);
    int len, W, H;
    unsigned char *png = png_grid_encode("test", imgs, 4, 1, 5, 5, 2, 2, 1, -1, 1, &len, &W, &H);
    tfevents_image_png(t, "raw_png", 31, png, (size_t)len, H, W, 1);
    tfevents_close(t);

    snprintf(json, sizeof json, "%s/events.json", g_dir);
    snprintf(dump, sizeof dump, "%s/dump", g_dir);
    make_dirs(dump);
    cJSON *ev = read_back(file, json, dump);
    CHECK(cJSON_GetArraySize(ev) == 7, "7 events (file_version + 4 scalars + 2 images): %d", cJSON_GetArraySize(ev));
    cJSON *e0 = cJSON_GetArrayItem(ev, 0);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(e0, "file_version")) &&
          !strcmp(cJSON_GetObjectItem(e0, "file_version")->valuestring, "brain.Event:2"), "first event: file_version");
    for (int s = 0; s < 3; s++) {
        cJSON *e = cJSON_GetArrayItem(ev, 1 + s), *v = value0(e);
        CHECK(cJSON_GetObjectItem(e, "step")->valuedouble == 10 * (s + 1), "scalar step");
        CHECK(!strcmp(cJSON_GetObjectItem(v, "tag")->valuestring, "loss"), "scalar tag");
        CHECK((float)cJSON_GetObjectItem(v, "simple_value")->valuedouble == loss[s], "scalar value %g", loss[s]);
        CHECK(cJSON_GetObjectItem(e, "wall_time")->valuedouble > 1.6e9, "wall time is Unix seconds");
    }
    cJSON *v = value0(cJSON_GetArrayItem(ev, 4));
    CHECK(!strcmp(cJSON_GetObjectItem(v, "tag")->valuestring, "train/lr") &&
          (float)cJSON_GetObjectItem(v, "simple_value")->valuedouble == 1e-4f, "a tag with a slash");
    for (int k = 5; k < 7; k++) {
        cJSON *e = cJSON_GetArrayItem(ev, k), *im = cJSON_GetObjectItem(value0(e), "image");
        CHECK(im && cJSON_GetObjectItem(im, "height")->valueint == H && cJSON_GetObjectItem(im, "width")->valueint == W &&
              cJSON_GetObjectItem(im, "colorspace")->valueint == 1, "image %d header %dx%d", k, H, W);
        long n;
        char *bytes = im ? slurp(cJSON_GetObjectItem(im, "file")->valuestring, &n) : NULL;
        CHECK(bytes && n == len && memcmp(bytes, png, (size_t)len) == 0, "image %d: the PNG bytes written", k);
        free(bytes);
    }
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(ev, 5), "step")->valuedouble == 30, "image step");
    cJSON_Delete(ev);
    free(png);

    // a resumed run: SessionLog START at its first step, so TensorBoard drops what the old file has beyond it
    snprintf(dir, sizeof dir, "%s/resumed", g_dir);
    t = tfevents_open(dir, 1234);
    tfevents_scalar(t, "loss", 1235, 2.0f);
    tfevents_close(t);
    event_file(dir, file, sizeof file);
    ev = read_back(file, json, dump);
    cJSON *e1 = cJSON_GetArrayItem(ev, 1);
    CHECK(cJSON_GetArraySize(ev) == 3 && cJSON_GetObjectItem(e1, "session_log") &&
          cJSON_GetObjectItem(e1, "session_log")->valueint == 1 && cJSON_GetObjectItem(e1, "step")->valuedouble == 1234,
          "session_log START at the resume step");
    cJSON_Delete(ev);

    // the reader is not a rubber stamp: one flipped payload byte is a CRC error
    long n;
    char *b = slurp(file, &n);
    b[n - 8] ^= 1;
    FILE *f = fopen(file, "wb");
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
    free(b);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/tfevents_read.py %s > /dev/null 2>&1", file);
    CHECK(system(cmd) != 0, "a corrupted record is rejected by the reader");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/ddm-test-tfevents.XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_crc();
    if (system("/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null") != 0)
        printf("SKIPPED the read-back: python3-protobuf is not installed (tools/setup.sh installs it)\n");
    else
        test_roundtrip();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
