// The dataset interface (src/data/data.h) on small files this test writes: IDX (raw and gzipped), CIFAR-10
// and CIFAR-100 batches, ImageFolder trees of PNG and JPEG (grey, RGB, mixed sizes), latents (one .npy with
// labels, fast-DiT's per-sample folders); the bad inputs of issue 15, each one line naming the file; the
// background loader against plain reads, and the training order against train.c's formula.
#include <dirent.h>
#include <omp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>
#include "test.h"
#include "common.h"
#include "data/data.h"
#include "data/image.h"
#include "eval/feature_sets.h"
#include "io/npy.h"
#include "rng.h"
#include "stb_image_write.h"

static char g_dir[64];

static const char *tmp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *tmp(const char *fmt, ...) {
    static char bufs[16][512];
    static int k = 0;
    char *p = bufs[k++ % 16], name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static void mkdir_p(const char *p) { CHECK(make_dirs(p) == 0, "mkdir %s", p); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void spec_at(DataSpec *s, const char *path, const char *format) {
    data_spec_defaults(s);
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->format, sizeof s->format, "%s", format ? format : "auto");
}

// A child that opens g_spec (split g_split, whole_ok g_whole) and reads every sample: it must exit 1 with
// one "ddm: error:" line holding `needle` (a file name and what was expected).
static DataSpec g_spec;
static const char *g_split = "train";
static int g_whole = 1;
// A forked child cannot use the OpenMP pool its parent started (libgomp would wait for threads that were
// not copied): the children run single-threaded.
static void open_and_read(void) {
    omp_set_num_threads(1);
    DataSource *d = data_open(&g_spec, g_split, g_whole);
    float *x = xmalloc((size_t)d->c * d->h * d->w * sizeof(float));
    for (int64_t i = 0; i < d->n; i++) data_get(d, i, x);
    data_close(d);
}

static void expect_fatal(const char *what, const char *needle, const char *needle2) {
    char msg[4096];
    int status = run_in_child(open_and_read, msg, sizeof msg), lines = 0;
    for (size_t i = 0; msg[i]; i++) lines += msg[i] == '\n';
    CHECK(status == 1, "%s: expected exit status 1, got %d (%s)", what, status, msg);
    CHECK(lines == 1 && strncmp(msg, "ddm: error: ", 12) == 0, "%s: expected one 'ddm: error:' line, got: %s", what, msg);
    CHECK(strstr(msg, needle), "%s: message lacks '%s': %s", what, needle, msg);
    CHECK(!needle2 || strstr(msg, needle2), "%s: message lacks '%s': %s", what, needle2, msg);
}

// ---------------------------------------------------------------------------------------------
// IDX

static void put_be32(unsigned char *b, uint32_t v) { b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v; }

static void write_idx(const char *images, const char *labels, int n, int h, int w, int classes, int gz) {
    size_t ni = 16 + (size_t)n * h * w;
    unsigned char *im = xmalloc(ni), *lb = xmalloc(8 + n);
    put_be32(im, 0x803); put_be32(im + 4, n); put_be32(im + 8, h); put_be32(im + 12, w);
    for (size_t i = 16; i < ni; i++) im[i] = (unsigned char)(i * 37 % 256);
    put_be32(lb, 0x801); put_be32(lb + 4, n);
    for (int i = 0; i < n; i++) lb[8 + i] = (unsigned char)(i * 7 % classes);
    if (gz) {
        gzFile g = gzopen(images, "wb"); gzwrite(g, im, (unsigned)ni); gzclose(g);
        g = gzopen(labels, "wb"); gzwrite(g, lb, (unsigned)(8 + n)); gzclose(g);
    } else {
        write_bytes(images, im, ni);
        write_bytes(labels, lb, 8 + n);
    }
    free(im);
    free(lb);
}

static void test_idx(void) {
    const char *dir = tmp("kmnist");
    mkdir_p(dir);
    write_idx(tmp("kmnist/train-images-idx3-ubyte"), tmp("kmnist/train-labels-idx1-ubyte"), 37, 5, 6, 13, 0);
    write_idx(tmp("kmnist/t10k-images-idx3-ubyte.gz"), tmp("kmnist/t10k-labels-idx1-ubyte.gz"), 11, 5, 6, 13, 1);
    DataSpec s;
    spec_at(&s, dir, NULL);
    DataSource *tr = data_open(&s, "train", 1), *te = data_open(&s, "test", 0);
    CHECK(!strcmp(tr->format, "idx") && tr->n == 37 && tr->c == 1 && tr->h == 5 && tr->w == 6, "idx train shape");
    CHECK(te->n == 11 && !strcmp(te->split, "test"), "idx test split from t10k (gz)");
    CHECK(tr->num_classes == 13 && tr->labels[3] == 21 % 13, "idx classes found in the labels: %d", tr->num_classes);
    // the same values as the in-memory loader, image for image
    Dataset ref = dataset_load_idx(tmp("kmnist/train-images-idx3-ubyte"), tmp("kmnist/train-labels-idx1-ubyte"));
    Dataset m = data_materialize(tr, 0, 0, "--n");
    CHECK(m.n == 37 && memcmp(m.images, ref.images, (size_t)37 * 30 * sizeof(float)) == 0, "idx materialize == dataset_load_idx");
    CHECK(memcmp(m.labels, ref.labels, 37 * sizeof(int)) == 0 && m.num_classes == ref.num_classes, "idx labels");
    float *a = data_draw(tr, 9, 5), *b = dataset_draw(&ref, 9, 5);
    CHECK(memcmp(a, b, (size_t)9 * 30 * sizeof(float)) == 0, "data_draw == dataset_draw");
    free(a); free(b);
    dataset_free(&m);
    dataset_free(&ref);
    char *js = data_describe_json(tr);
    CHECK(strstr(js, "\"format\":\"idx\"") && strstr(js, "\"n\":37") && strstr(js, "\"shape\":[1,5,6]") &&
          strstr(js, "\"num_classes\":13"), "idx description: %s", js);
    free(js);
    data_close(tr);
    data_close(te);
    // one file named directly: its split, and the t10k sibling for the test split
    spec_at(&s, tmp("kmnist/train-images-idx3-ubyte"), NULL);
    te = data_open(&s, "test", 0);
    CHECK(te->n == 11, "idx test sibling of a named file");
    data_close(te);

    mkdir_p(tmp("idx_notest"));
    write_idx(tmp("idx_notest/train-images-idx3-ubyte"), tmp("idx_notest/train-labels-idx1-ubyte"), 4, 2, 2, 3, 0);
    spec_at(&g_spec, tmp("idx_notest"), NULL);
    g_split = "test"; g_whole = 0;
    expect_fatal("idx without a test split", "no IDX images file for the test split", tmp("idx_notest"));
    g_split = "train"; g_whole = 1;
    unlink(tmp("idx_notest/train-labels-idx1-ubyte"));
    expect_fatal("idx without labels", "no labels file beside it", "train-labels-idx1-ubyte");
    // a truncated images file is mapped, and the header's size is checked against it before any read
    write_idx(tmp("idx_notest/train-images-idx3-ubyte"), tmp("idx_notest/train-labels-idx1-ubyte"), 4, 2, 2, 3, 0);
    truncate(tmp("idx_notest/train-images-idx3-ubyte"), 16 + 10);
    expect_fatal("idx truncated (mapped)", "truncated: header says 4 images of 2x2 (16 bytes) but only 10", "train-images-idx3-ubyte");
    // 2^30 x 2^30 x 16 bytes wraps a 64-bit product to 0: a bare header once "loaded" 2^30 images of no bytes
    unsigned char hdr[16];
    put_be32(hdr, 0x803); put_be32(hdr + 4, 1u << 30); put_be32(hdr + 8, 1u << 30); put_be32(hdr + 12, 16);
    write_bytes(tmp("idx_notest/train-images-idx3-ubyte"), hdr, 16);
    expect_fatal("idx sizes whose product overflows", "IDX header says 1073741824x1073741824x16 bytes, implausibly large", NULL);
}

// ---------------------------------------------------------------------------------------------
// CIFAR

static void write_cifar(const char *path, int records, int label_bytes, int seed) {
    size_t rec = (size_t)label_bytes + 3072;
    unsigned char *b = xmalloc(records * rec);
    for (int r = 0; r < records; r++) {
        unsigned char *p = b + r * rec;
        if (label_bytes == 1) p[0] = (unsigned char)((r + seed) % 10);
        else { p[0] = (unsigned char)((r + seed) % 20); p[1] = (unsigned char)((r * 3 + seed) % 100); }
        for (int i = 0; i < 3072; i++) p[label_bytes + i] = (unsigned char)(i * 5 + r * 11 + seed);
    }
    write_bytes(path, b, records * rec);
    free(b);
}

static void test_cifar(void) {
    mkdir_p(tmp("c10/cifar-10-batches-bin"));
    for (int k = 1; k <= 5; k++) write_cifar(tmp("c10/cifar-10-batches-bin/data_batch_%d.bin", k), k + 1, 1, k);
    write_cifar(tmp("c10/cifar-10-batches-bin/test_batch.bin"), 4, 1, 9);
    DataSpec s;
    spec_at(&s, tmp("c10"), NULL);   // the folder the archive unpacks into is found below --data
    DataSource *tr = data_open(&s, "train", 1), *te = data_open(&s, "test", 0);
    CHECK(!strcmp(tr->format, "cifar") && tr->n == 2 + 3 + 4 + 5 + 6 && tr->c == 3 && tr->h == 32, "cifar-10 train: %lld", (long long)tr->n);
    CHECK(te->n == 4 && tr->num_classes == 10, "cifar-10 test");
    // record 0 of data_batch_3 is sample 2 + 3 = 5: label (0 + 3) % 10, pixel i = i * 5 + 3, channel-major
    float x[3072];
    data_get(tr, 5, x);
    CHECK(tr->labels[5] == 3, "cifar-10 label across files: %d", tr->labels[5]);
    CHECK(x[0] == (unsigned char)3 / 255.0f * 2 - 1 && x[1024 + 7] == (unsigned char)(1031 * 5 + 3) / 255.0f * 2 - 1,
          "cifar-10 pixels R then G planes");
    data_close(tr);
    data_close(te);

    mkdir_p(tmp("c100"));
    write_cifar(tmp("c100/train.bin"), 7, 2, 0);
    write_cifar(tmp("c100/test.bin"), 3, 2, 1);
    spec_at(&s, tmp("c100"), NULL);
    tr = data_open(&s, "train", 1);
    CHECK(tr->n == 7 && tr->num_classes == 100 && tr->labels[4] == 12, "cifar-100: fine labels (%d)", tr->labels[4]);
    data_get(tr, 1, x);
    CHECK(x[2] == (unsigned char)(10 + 11) / 255.0f * 2 - 1, "cifar-100 pixels after 2 label bytes");
    data_close(tr);

    // bad inputs
    truncate(tmp("c10/cifar-10-batches-bin/data_batch_4.bin"), 5 * 3073 - 1);
    spec_at(&g_spec, tmp("c10"), NULL);
    expect_fatal("cifar wrong length", "data_batch_4.bin: 15364 bytes is not a whole number of 3073-byte CIFAR-10 records", NULL);
    unlink(tmp("c10/cifar-10-batches-bin/data_batch_4.bin"));
    expect_fatal("cifar missing batch", "data_batch_4.bin is missing", "data_batch_1.bin .. data_batch_5.bin");
    write_cifar(tmp("c10/cifar-10-batches-bin/data_batch_4.bin"), 5, 1, 4);
    unsigned char bad = 10;
    FILE *f = fopen(tmp("c10/cifar-10-batches-bin/data_batch_2.bin"), "r+b");
    fseek(f, 3073, SEEK_SET);
    fwrite(&bad, 1, 1, f);
    fclose(f);
    expect_fatal("cifar label out of range", "data_batch_2.bin: record 1 has label 10, expected 0..9", NULL);
    write_cifar(tmp("single.bin"), 3, 1, 0);
    spec_at(&g_spec, tmp("single.bin"), NULL);
    g_split = "test"; g_whole = 0;
    expect_fatal("one cifar file has no test split", "single.bin: one CIFAR batch file has no test split", "--test-data");
    g_split = "train"; g_whole = 1;
}

// ---------------------------------------------------------------------------------------------
// ImageFolder

static void write_png(const char *path, int w, int h, int c, int seed) {
    unsigned char *px = xmalloc((size_t)w * h * c);
    for (int i = 0; i < w * h * c; i++) px[i] = (unsigned char)(i * 13 + seed * 29);
    CHECK(stbi_write_png(path, w, h, c, px, w * c), "write %s", path);
    free(px);
}

static void write_jpg(const char *path, int w, int h, int c, int seed) {
    unsigned char *px = xmalloc((size_t)w * h * c);
    for (int y = 0; y < h; y++)   // smooth, so JPEG keeps it close
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) px[(y * w + x) * c + k] = (unsigned char)(40 + 3 * x + 2 * y + 30 * k + seed);
    CHECK(stbi_write_jpg(path, w, h, c, px, 95), "write %s", path);
    free(px);
}

static void test_imagefolder(void) {
    // train/ and val/ splits; classes in sorted order; a nested folder; PNG and JPEG; grey and RGB
    mkdir_p(tmp("if/train/zebra"));
    mkdir_p(tmp("if/train/ant/sub"));
    mkdir_p(tmp("if/val/ant"));
    mkdir_p(tmp("if/val/zebra"));
    write_png(tmp("if/train/ant/a.png"), 8, 8, 3, 1);
    write_png(tmp("if/train/ant/sub/b.png"), 8, 8, 1, 2);   // grey in a colour set: copied to 3 channels
    write_jpg(tmp("if/train/zebra/c.JPG"), 8, 8, 3, 3);
    write_jpg(tmp("if/val/ant/d.jpeg"), 8, 8, 3, 4);
    write_png(tmp("if/val/zebra/e.png"), 8, 8, 3, 5);
    DataSpec s;
    spec_at(&s, tmp("if"), NULL);
    DataSource *tr = data_open(&s, "train", 1), *te = data_open(&s, "test", 0);
    CHECK(!strcmp(tr->format, "imagefolder") && tr->n == 3 && tr->c == 3 && tr->h == 8 && tr->w == 8, "imagefolder train");
    CHECK(tr->num_classes == 2 && !strcmp(tr->class_names[0], "ant") && tr->labels[0] == 0 && tr->labels[1] == 0 &&
          tr->labels[2] == 1, "imagefolder classes sorted, nested files in their class");
    CHECK(te->n == 2 && !strcmp(te->split, "test") && strstr(te->path, "/val"), "imagefolder val split");
    float x[3 * 64];
    data_get(tr, 0, x);   // a.png, exactly as written (no resize): pixel i = i * 13 + 29, channel-major here
    CHECK(x[0] == (unsigned char)29 / 255.0f * 2 - 1 && x[64 + 5] == (unsigned char)(16 * 13 + 29) / 255.0f * 2 - 1,
          "imagefolder PNG pixels exact");
    data_get(tr, 1, x);   // grey: R = G = B
    CHECK(x[10] == x[64 + 10] && x[10] == x[128 + 10] && x[10] == (unsigned char)(10 * 13 + 58) / 255.0f * 2 - 1,
          "grey copied to RGB");
    data_get(tr, 2, x);   // JPEG at quality 95 of a smooth ramp: within a few levels
    CHECK(fabsf(x[0] - (40 + 3) / 255.0f * 2 + 1) < 0.05f && fabsf(x[128 + 9] - (40 + 3 + 3 + 2 + 60) / 255.0f * 2 + 1) < 0.05f,
          "JPEG decoded: %g", x[0]);
    data_close(tr);
    data_close(te);

    // mixed sizes need --image-size; with it every image is S x S
    mkdir_p(tmp("mixed/a"));
    mkdir_p(tmp("mixed/b"));
    write_png(tmp("mixed/a/1.png"), 20, 12, 1, 1);
    write_png(tmp("mixed/b/2.png"), 9, 30, 1, 2);
    write_png(tmp("mixed/b/3.png"), 16, 16, 1, 3);   // (stb writes every JPEG as YCbCr: grey JPEGs are in the CLI test)
    spec_at(&g_spec, tmp("mixed"), NULL);
    expect_fatal("mixed sizes without --image-size", "the images differ in size; pass --image-size", "2.png is 9x30");
    spec_at(&s, tmp("mixed"), NULL);
    s.image_size = 8;
    tr = data_open(&s, "train", 1);
    CHECK(tr->n == 3 && tr->c == 1 && tr->h == 8 && tr->w == 8 && strstr(tr->detail, "center_crop_arr"), "mixed sizes -> 8x8: "
          "%lld %d %d %d %s", (long long)tr->n, tr->c, tr->h, tr->w, tr->detail);
    data_close(tr);
    // an image of exactly S x S is untouched by the centre crop
    unsigned char src[16 * 3], dst[16 * 3];
    for (int i = 0; i < 48; i++) src[i] = (unsigned char)(i * 7);
    CHECK(image_center_crop_arr(src, 4, 4, 3, 4, dst) == 0 && memcmp(src, dst, 48) == 0, "crop of an S x S image is a copy");
    // a 2x wider image: box halving is not used (short side < 2S), bicubic to 4 x 8 would be identity on height,
    // then the central 4 columns
    unsigned char wide[4 * 8];
    for (int i = 0; i < 32; i++) wide[i] = (unsigned char)(i % 8 * 10);
    CHECK(image_center_crop_arr(wide, 8, 4, 1, 4, dst) == 0 && dst[0] == 20 && dst[3] == 50, "centre crop columns 2..5");

    // bad inputs: each one line naming the file
    mkdir_p(tmp("bad/cat"));
    mkdir_p(tmp("bad/dog"));
    write_png(tmp("bad/cat/1.png"), 6, 6, 3, 1);
    write_png(tmp("bad/dog/2.png"), 6, 6, 3, 2);
    write_bytes(tmp("bad/dog/3.png"), "hello, not a picture", 20);
    spec_at(&g_spec, tmp("bad"), NULL);
    expect_fatal("non-image file with an image name", "dog/3.png: not a PNG or JPEG image (it starts with bytes 68 65 6c", NULL);
    unlink(tmp("bad/dog/3.png"));
    write_png(tmp("bad/dog/3.png"), 6, 6, 3, 3);
    truncate(tmp("bad/dog/3.png"), 60);
    expect_fatal("truncated PNG", "dog/3.png: truncated PNG", NULL);
    unlink(tmp("bad/dog/3.png"));
    write_jpg(tmp("bad/dog/3.jpg"), 32, 32, 3, 3);
    struct stat st;
    stat(tmp("bad/dog/3.jpg"), &st);
    truncate(tmp("bad/dog/3.jpg"), st.st_size * 2 / 3);
    expect_fatal("truncated JPEG", "dog/3.jpg: truncated JPEG", NULL);
    unlink(tmp("bad/dog/3.jpg"));
    write_png(tmp("bad/dog/3.png"), 6, 6, 3, 3);
    FILE *f = fopen(tmp("bad/dog/3.png"), "r+b");   // flip a byte inside the image data: a CRC mismatch
    fseek(f, -20, SEEK_END);
    int ch = fgetc(f);
    fseek(f, -20, SEEK_END);
    fputc(ch ^ 0x55, f);
    fclose(f);
    expect_fatal("corrupt PNG", "dog/3.png: corrupt PNG", NULL);
    unlink(tmp("bad/dog/3.png"));
    chmod(tmp("bad/dog/2.png"), 0);
    if (access(tmp("bad/dog/2.png"), R_OK) != 0) expect_fatal("unreadable file", "dog/2.png: cannot open", NULL);
    else printf("skipping the unreadable-file case: running as root, chmod 0 does not stop reads\n");
    chmod(tmp("bad/dog/2.png"), 0644);
    mkdir_p(tmp("bad/empty"));
    expect_fatal("empty class folder", "bad/empty: empty class folder", NULL);
    rmdir(tmp("bad/empty"));
    mkdir_p(tmp("flat"));
    write_png(tmp("flat/1.png"), 4, 4, 1, 0);
    spec_at(&g_spec, tmp("flat"), "imagefolder");
    expect_fatal("no class folders", "no class sub-folders", NULL);
    spec_at(&g_spec, tmp("bad"), NULL);
    g_split = "test"; g_whole = 0;
    expect_fatal("imagefolder without splits asked for its test split", "has one split", "--test-data");
    g_split = "train"; g_whole = 1;
}

// ---------------------------------------------------------------------------------------------
// latents

static void test_latents(void) {
    enum { N = 10, C = 4, H = 3, W = 2 };
    float *z = xmalloc(sizeof(float) * N * C * H * W), y[N];
    for (int i = 0; i < N * C * H * W; i++) z[i] = (float)i * 0.25f - 3;
    for (int i = 0; i < N; i++) y[i] = (float)(i % 4);
    int64_t shape[4] = {N, C, H, W}, ny = N;
    mkdir_p(tmp("lat"));
    npy_save_f32(tmp("lat/z.npy"), 4, shape, z);
    npy_save_f32(tmp("lat/z_labels.npy"), 1, &ny, y);
    DataSpec s;
    spec_at(&s, tmp("lat/z.npy"), NULL);
    snprintf(s.scale, sizeof s.scale, "0.5,1,2,1");
    snprintf(s.shift, sizeof s.shift, "1");
    DataSource *d = data_open(&s, "train", 1);
    CHECK(!strcmp(d->format, "latents") && d->n == N && d->c == C && d->h == H && d->w == W && d->num_classes == 4,
          "latents .npy shape and labels");
    float x[C * H * W];
    data_get(d, 3, x);
    int base = 3 * C * H * W;
    CHECK(x[0] == (z[base] - 1) * 0.5f && x[2 * H * W + 1] == (z[base + 2 * H * W + 1] - 1) * 2, "per-channel scale/shift");
    char *js = data_describe_json(d);
    CHECK(strstr(js, "\"scale\":[0.5,1,2,1]") && strstr(js, "\"shift\":[1,1,1,1]"), "scale/shift described: %s", js);
    free(js);
    data_close(d);

    // fast-DiT: per-sample [1, C, H, W] features and [1] labels, paired by name
    mkdir_p(tmp("fd/imagenet256_features"));
    mkdir_p(tmp("fd/imagenet256_labels"));
    int64_t s1[4] = {1, C, H, W}, one = 1;
    for (int i = 0; i < N; i++) {
        npy_save_f32(tmp("fd/imagenet256_features/%d.npy", i), 4, s1, z + i * C * H * W);
        npy_save_f32(tmp("fd/imagenet256_labels/%d.npy", i), 1, &one, y + i);
    }
    spec_at(&s, tmp("fd"), NULL);
    d = data_open(&s, "train", 1);
    CHECK(d->n == N && d->c == C && d->h == H && d->w == W, "fast-DiT folders");
    // names sort as strings (0, 1, 10?, 2, ...): sample k is the file at sorted position k; check by content
    int ok = 1;
    for (int64_t k = 0; k < d->n; k++) {
        data_get(d, k, x);
        int i = (int)((x[0] + 3) / 0.25f) / (C * H * W);
        ok &= memcmp(x, z + i * C * H * W, sizeof x) == 0 && d->labels[k] == (int)y[i];
    }
    CHECK(ok, "fast-DiT features pair with their labels");
    data_close(d);

    // bad inputs
    spec_at(&g_spec, tmp("lat/z.npy"), NULL);
    int64_t n9 = N - 1;
    npy_save_f32(tmp("lat/z_labels.npy"), 1, &n9, y);
    expect_fatal("labels count disagrees", "z_labels.npy: 9 labels, but", "z.npy holds 10 latents");
    npy_save_f32(tmp("lat/z_labels.npy"), 1, &ny, y);
    truncate(tmp("lat/z.npy"), 128 + 100);
    expect_fatal("truncated latents .npy", "z.npy: truncated: header says [10, 4, 3, 2] <f4 (960 bytes) but only 100", NULL);
    snprintf(g_spec.scale, sizeof g_spec.scale, "1,2");
    npy_save_f32(tmp("lat/z.npy"), 4, shape, z);
    expect_fatal("scale per channel", "--latent-scale '1,2': 2 values, but the data have 4 channels", NULL);
    spec_at(&g_spec, tmp("fd"), NULL);
    unlink(tmp("fd/imagenet256_labels/7.npy"));
    expect_fatal("features without a label", "imagenet256_labels holds 9 .npy files", "7.npy has no match");
    npy_save_f32(tmp("fd/imagenet256_labels/7.npy"), 1, &one, y);
    int64_t s2[4] = {1, C, H, 1};
    npy_save_f32(tmp("fd/imagenet256_features/5.npy"), 4, s2, z);
    expect_fatal("a feature of another shape", "5.npy holds [1, 4, 3, 1] <f4", "every feature file must hold one sample of the same shape");
    npy_save_f32(tmp("fd/imagenet256_features/5.npy"), 4, s1, z);
    spec_at(&g_spec, tmp("if"), NULL);
    snprintf(g_spec.scale, sizeof g_spec.scale, "0.18215");
    expect_fatal("scale on images", "--latent-scale / --latent-shift apply to latents", NULL);
    free(z);
}

// ---------------------------------------------------------------------------------------------
// background loading

static void test_order_and_loader(void) {
    DataSpec s;
    spec_at(&s, tmp("kmnist"), NULL);
    DataSource *d = data_open(&s, "train", 1);   // 37 samples: batches of 8 straddle epochs
    enum { B = 8, STEPS = 12 };
    // the order is train.c's epoch_perm, sample for sample
    DataOrder o;
    data_order_init(&o, 42, d->n);
    int ok = 1;
    int perm[64];
    for (int64_t step = 0; step < STEPS; step++) {
        int64_t idx[B];
        data_order_batch(&o, step, B, idx);
        for (int j = 0; j < B; j++) {
            int64_t g = step * B + j;
            Rng r;
            rng_init(&r, 42 ^ 0xDA7A5EEDull, (uint64_t)(g / d->n));
            rng_permutation(&r, perm, (int)d->n);
            ok &= idx[j] == perm[g % d->n];
        }
    }
    CHECK(ok, "data_order_batch == train.c's epoch permutation");
    data_order_free(&o);
    // the double-buffered loader gives every step's samples as plain reads do, from any starting step
    size_t per = (size_t)d->c * d->h * d->w;
    float *want = xmalloc(B * per * sizeof(float));
    DataLoader *l = data_loader_new(d, 42, B, 3), *l2 = data_loader_new(d, 42, B, 1);
    data_order_init(&o, 42, d->n);
    ok = 1;
    for (int64_t step = 0; step < STEPS; step++) {
        const int32_t *lab;
        const int64_t *idx;
        const float *x = data_loader_batch(l, step, &lab, &idx);
        int64_t ref[B];
        data_order_batch(&o, step, B, ref);
        for (int j = 0; j < B; j++) {
            data_get(d, ref[j], want + j * per);
            ok &= idx[j] == ref[j] && lab[j] == d->labels[ref[j]];
        }
        ok &= memcmp(x, want, B * per * sizeof(float)) == 0;
        if (step >= 5) {   // a "resumed" loader that starts at step 5
            const float *x2 = data_loader_batch(l2, step, NULL, NULL);
            ok &= memcmp(x2, want, B * per * sizeof(float)) == 0;
        }
    }
    CHECK(ok, "loader batches == plain reads in the seeded order, resumed or not");
    const float *again = data_loader_batch(l, 3, NULL, NULL);   // a jump back
    int64_t ref[B];
    data_order_batch(&o, 3, B, ref);
    for (int j = 0; j < B; j++) data_get(d, ref[j], want + j * per);
    CHECK(memcmp(again, want, B * per * sizeof(float)) == 0, "loader jump back");
    data_loader_free(l);
    data_loader_free(l2);
    data_order_free(&o);
    free(want);
    data_close(d);
}

// A read error in a background thread is reported by the thread that waits, as one line.
static void prefetch_bad_file(void) {
    omp_set_num_threads(1);
    DataSpec s;
    spec_at(&s, tmp("lazy"), NULL);
    s.cache_mb = 0;   // too small to decode at open: files are read when asked for
    DataSource *d = data_open(&s, "train", 1);
    DataPrefetch *p = data_prefetch_new(d, 2);
    float *buf = xmalloc((size_t)d->n * d->c * d->h * d->w * sizeof(float));
    int64_t idx[3] = {0, 1, 2};
    data_prefetch_submit(p, idx, 3, buf, NULL);
    data_prefetch_wait(p);
}

static void test_prefetch_error(void) {
    mkdir_p(tmp("lazy/a"));
    write_png(tmp("lazy/a/1.png"), 16, 16, 3, 1);
    write_png(tmp("lazy/a/2.png"), 16, 16, 3, 2);
    write_png(tmp("lazy/a/3.png"), 16, 16, 3, 3);
    truncate(tmp("lazy/a/2.png"), 100);   // the header is intact: found only when decoded
    char msg[4096];
    int st = run_in_child(prefetch_bad_file, msg, sizeof msg);
    CHECK(st == 1 && strstr(msg, "ddm: error: ") && strstr(msg, "lazy/a/2.png: truncated PNG"), "prefetch error: %d %s", st, msg);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/ddm-test-data.XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_idx();
    test_cifar();
    test_imagefolder();
    test_latents();
    test_order_and_loader();
    test_prefetch_error();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    TEST_MAIN_END();
}
