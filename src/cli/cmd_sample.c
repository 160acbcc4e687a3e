// ddm sample: draw images from a checkpoint with the sampler of its objective.
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "model/model_load.h"
#include "common.h"
#include "io/npy.h"
#include "io/png.h"
#include "infer/generate.h"

int cmd_sample(int argc, char **argv) {
    char ckpt[512] = "", out[512] = "samples.png", npy[512] = "";
    char precision[8] = "fp32", device[16] = "";
    int n = 100, raw = 0, ncols = 10, scale = 2, threads = 0;
    GenerateOpts g;
    generate_opts_defaults(&g);
    ArgSpec specs[] = {
        {"ckpt", ARG_STR, ckpt, sizeof ckpt, 0, 0, "checkpoint (.safetensors)", 0, NULL},
        {"out", ARG_STR, out, sizeof out, 0, 0, "PNG grid to write", 0, NULL},
        {"npy", ARG_STR, npy, sizeof npy, 0, 0, "also write the samples as float32 .npy [N, C, H, W] in [-1, 1]", 0, NULL},
        {"n", ARG_INT, &n, 0, 1, 1e7, "number of samples", 0, NULL},
        CLI_GENERATE_FLAGS(g, raw),
        {"seed", ARG_U64, &g.seed, 0, 0, 1.8e19, "random seed", 0, NULL},
        {"ncols", ARG_INT, &ncols, 0, 1, 10000, "grid columns", 0, NULL},
        {"scale", ARG_INT, &scale, 0, 1, 64, "pixel upscaling of the grid", 0, NULL},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0, NULL},
        {"precision", ARG_STR, precision, sizeof precision, 0, 0, CLI_PRECISION_HELP " (not the checkpoint's: fp32 unless given)", 0, NULL},
        CLI_DEVICE_FLAG(device),
    };
    ArgParser p = {"sample", "Sample images from a checkpoint into a PNG grid (and optionally .npy).", specs,
                   sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    cli_set_threads(threads);
    const Ops *ops = cli_ops(device, precision);
    if (!ckpt[0]) ddm_fatal("ddm sample needs --ckpt");
    TrainConfig tc;
    Dit *m = model_load(ckpt, !raw, ops, &tc);
    const DitConfig *c = &m->cfg;
    generate_resolve(&g, m, &tc, ckpt);
    fprintf(stderr, "ddm sample: %d samples, %s, %d steps, cfg %g, %s weights\n", n, g.sampler, g.steps, g.cfg_scale,
            raw ? "raw" : "EMA");
    double t0 = now_seconds();
    float *x = generate_samples(m, &tc, &g, n, NULL);
    fprintf(stderr, "ddm sample: %.1f s (%.2f images/s)\n", now_seconds() - t0, n / (now_seconds() - t0));
    long per = (long)c->in_channels * c->height * c->width;
    int show = c->in_channels == 3 ? 3 : 1;   // grey, RGB, or the first channel of anything else
    float *vis = x;
    if (c->in_channels != show) {
        vis = xmalloc(n * (long)c->height * c->width * sizeof(float));
        for (int i = 0; i < n; i++) memcpy(vis + (long)i * c->height * c->width, x + i * per, (long)c->height * c->width * sizeof(float));
    }
    png_write_grid(out, vis, n, show, c->height, c->width, ncols, 2, scale, -1, 1);
    if (npy[0]) {
        int64_t shape[4] = {n, c->in_channels, c->height, c->width};
        npy_save_f32(npy, 4, shape, x);
    }
    fprintf(stderr, "ddm sample: wrote %s%s%s\n", out, npy[0] ? " and " : "", npy);
    if (vis != x) free(vis);
    free(x);
    dit_free(m);
    return 0;
}
