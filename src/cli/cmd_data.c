// ddm data: what ddm reads from a dataset — its description (the JSON a checkpoint records), and the
// samples themselves after preprocessing, as .npy or a PNG grid — and a full read of a split (--check).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "cli/cli_data.h"
#include "common.h"
#include "io/npy.h"
#include "io/png.h"

int cmd_data(int argc, char **argv) {
    DataSpec spec;
    data_spec_defaults(&spec);
    char split[8] = "train", npy[512] = "", labels_out[512] = "", png[512] = "", test_data[DATA_PATH_MAX] = "";
    char save_config[512] = "";
    int n = 16, check = 0, json = 0, threads = 0, workers = 2;
    ArgSpec specs[] = {
        CLI_DATA_FLAGS(spec),
        CLI_TEST_DATA_FLAG(test_data),
        {"split", ARG_STR, split, sizeof split, 0, 0, "train or test", 0, NULL},
        {"json", ARG_BOOL, &json, 0, 0, 1, "print the description as the JSON a checkpoint records", 0, NULL},
        {"n", ARG_INT, &n, 0, 1, 1 << 30, "samples written by --npy / --png (the first n)", 0, NULL},
        {"npy", ARG_STR, npy, sizeof npy, 0, 0, "write the first n samples as float32 .npy [n, C, H, W], as ddm sees them", 0, NULL},
        {"labels-npy", ARG_STR, labels_out, sizeof labels_out, 0, 0, "write their labels as float32 .npy [n]", 0, NULL},
        {"png", ARG_STR, png, sizeof png, 0, 0, "write the first n samples as a PNG grid (images; latents show channel 0)", 0, NULL},
        {"check", ARG_BOOL, &check, 0, 0, 1, "read every sample of the split through the background loader (finds "
         "files that are truncated past their header)", 0, NULL},
        {"save-config", ARG_STR, save_config, sizeof save_config, 0, 0, "write the dataset flags as a --config file "
         "(name = value lines) that any data command reads back", 0, NULL},
        {"workers", ARG_INT, &workers, 0, 1, 256, "--check: background loading threads", 0, NULL},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0, NULL},
    };
    ArgParser ap = {"data", "Describe a dataset as ddm reads it; write its first samples (.npy, PNG); check every sample.",
                    specs, sizeof specs / sizeof specs[0]};
    args_parse(&ap, argc, argv);
    cli_set_threads(threads);
    if (strcmp(split, "train") && strcmp(split, "test")) ddm_fatal("--split '%s': expected train or test", split);
    DataSource *d = strcmp(split, "test") ? data_open(&spec, "train", 1) : cli_open_test(&spec, test_data);
    if (json) {
        char *s = data_describe_json(d);
        printf("%s\n", s);
        free(s);
    } else {
        char line[3000];
        data_describe_line(d, line, sizeof line);
        printf("%s\n", line);
    }
    if (save_config[0]) {
        AtomicFile af = atomic_open(save_config);
        fprintf(af.f, "# the dataset of: ddm data (%s)\n", d->path);
        cli_data_write_config(af.f, &spec, test_data);
        atomic_commit(&af);
    }
    if (n > d->n) n = (int)d->n;
    size_t per = (size_t)d->c * d->h * d->w;
    if (npy[0] || png[0] || labels_out[0]) {
        float *x = xmalloc((size_t)n * per * sizeof(float)), *y = xmalloc((size_t)n * sizeof(float));
        for (int i = 0; i < n; i++) {
            data_get(d, i, x + (size_t)i * per);
            y[i] = d->labels ? (float)d->labels[i] : -1;
        }
        if (npy[0]) {
            int64_t shape[4] = {n, d->c, d->h, d->w};
            npy_save_f32(npy, 4, shape, x);
        }
        if (labels_out[0]) {
            int64_t shape[1] = {n};
            npy_save_f32(labels_out, 1, shape, y);
        }
        if (png[0]) {   // grey, RGB, or channel 0 of anything else (latents)
            int show = d->c == 3 ? 3 : 1;
            float *vis = x;
            if (d->c != show) {
                size_t hw = (size_t)d->h * d->w;
                vis = xmalloc((size_t)n * hw * sizeof(float));
                for (int i = 0; i < n; i++) memcpy(vis + i * hw, x + i * per, hw * sizeof(float));
            }
            png_write_grid(png, vis, n, show, d->h, d->w, 8, 2, 1, -1, 1);
            if (vis != x) free(vis);
        }
        free(x);
        free(y);
    }
    if (check) {
        enum { B = 64 };
        DataPrefetch *p = data_prefetch_new(d, workers);
        float *buf = xmalloc(B * per * sizeof(float));
        int64_t idx[B];
        double t0 = now_seconds();
        for (int64_t s = 0; s < d->n; s += B) {
            int k = d->n - s < B ? (int)(d->n - s) : B;
            for (int j = 0; j < k; j++) idx[j] = s + j;
            data_prefetch_submit(p, idx, k, buf, NULL);
            data_prefetch_wait(p);
        }
        printf("checked: all %lld samples read (%.1f s)\n", (long long)d->n, now_seconds() - t0);
        free(buf);
        data_prefetch_free(p);
    }
    data_close(d);
    return 0;
}
