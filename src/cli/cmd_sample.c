// ddm sample: draw images from a checkpoint with the sampler of its objective.
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "train/model_load.h"
#include "common.h"
#include "io/npy.h"
#include "io/png.h"
#include "rng.h"
#include "sample/sampler.h"

typedef struct { Dit *m; int chunk; float *buf; } ModelCtx;

// The sampler's view of the model: batches of at most `chunk`; learned-sigma channels dropped.
static void model_denoise(void *ctx, float *out, const float *x, const float *t, const int *y, int n) {
    ModelCtx *mc = ctx;
    const DitConfig *c = &mc->m->cfg;
    long hw = (long)c->height * c->width, in = c->in_channels * hw, full = dit_out_channels(c) * hw;
    for (int s = 0; s < n; s += mc->chunk) {
        int k = n - s < mc->chunk ? n - s : mc->chunk;
        dit_forward(mc->m, mc->buf, x + s * in, t + s, y ? y + s : NULL, k);
        for (int b = 0; b < k; b++) memcpy(out + (s + b) * in, mc->buf + b * full, in * sizeof(float));
    }
}

static void choose_labels(int *y, int n, int num_classes, int cls, Rng *r) {
    for (int i = 0; i < n; i++)
        y[i] = cls >= 0 ? cls : cls == -2 ? i % num_classes : rng_int(r, num_classes);
}

int cmd_sample(int argc, char **argv) {
    char ckpt[512] = "", out[512] = "samples.png", npy[512] = "", sampler[16] = "";
    int n = 100, batch = 100, steps = 0, cls = -2, raw = 0, ncols = 10, scale = 2, threads = 0, clip = 0;
    float cfg_scale = 1, eta = 0, last_step = 0.04f;
    uint64_t seed = 0;
    ArgSpec specs[] = {
        {"ckpt", ARG_STR, ckpt, sizeof ckpt, 0, 0, "checkpoint (.safetensors)", 0},
        {"out", ARG_STR, out, sizeof out, 0, 0, "PNG grid to write", 0},
        {"npy", ARG_STR, npy, sizeof npy, 0, 0, "also write the samples as float32 .npy [N, C, H, W] in [-1, 1]", 0},
        {"n", ARG_INT, &n, 0, 1, 1e7, "number of samples", 0},
        {"batch", ARG_INT, &batch, 0, 1, 65536, "samples per model call", 0},
        {"sampler", ARG_STR, sampler, sizeof sampler, 0, 0, "heun | euler | sde (SiT); ddpm | ddim (DDPM) [heun / ddpm]", 0},
        {"steps", ARG_INT, &steps, 0, 0, 100000, "sampling steps (0 = 50 for SiT, 250 for DDPM)", 0},
        {"cfg", ARG_FLOAT, &cfg_scale, 0, 0, 100, "classifier-free guidance scale (1 = off)", 0},
        {"class", ARG_INT, &cls, 0, -2, 1e6, "class of every sample; -1 random; -2 cycle through the classes", 0},
        {"raw", ARG_BOOL, &raw, 0, 0, 1, "use the raw weights instead of the EMA", 0},
        {"eta", ARG_FLOAT, &eta, 0, 0, 1, "DDIM eta", 0},
        {"clip-x0", ARG_BOOL, &clip, 0, 0, 1, "DDPM/DDIM: clip the predicted x0 to [-1, 1]", 0},
        {"last-step", ARG_FLOAT, &last_step, 0, 0, 0.5, "SDE: size of the final noise-free step", 0},
        {"seed", ARG_U64, &seed, 0, 0, 1.8e19, "random seed", 0},
        {"ncols", ARG_INT, &ncols, 0, 1, 10000, "grid columns", 0},
        {"scale", ARG_INT, &scale, 0, 1, 64, "pixel upscaling of the grid", 0},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0},
    };
    ArgParser p = {"sample", "Sample images from a checkpoint into a PNG grid (and optionally .npy).", specs,
                   sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    cli_set_threads(threads);
    if (!ckpt[0]) ddm_fatal("ddm sample needs --ckpt");
    TrainConfig tc;
    Dit *m = model_load(ckpt, !raw, &tc);
    const DitConfig *c = &m->cfg;
    if (!strcmp(tc.objective, "ldae"))
        ddm_fatal("%s was trained with the ldae objective (a denoising autoencoder for representations, SPEC §1.2): "
                  "it has no sampler; evaluate it with ddm probe", ckpt);
    int ddpm = strcmp(tc.objective, "ddpm") == 0;
    if (!sampler[0]) strcpy(sampler, ddpm ? "ddpm" : "heun");
    int is_ddpm_sampler = !strcmp(sampler, "ddpm") || !strcmp(sampler, "ddim");
    int is_sit_sampler = !strcmp(sampler, "heun") || !strcmp(sampler, "euler") || !strcmp(sampler, "sde");
    if (!is_ddpm_sampler && !is_sit_sampler) ddm_fatal("--sampler '%s': expected heun, euler, sde, ddpm or ddim", sampler);
    if (ddpm != is_ddpm_sampler)
        ddm_fatal("--sampler %s does not fit a checkpoint trained with the %s objective (use %s)", sampler,
                  tc.objective, ddpm ? "ddpm or ddim" : "heun, euler or sde");
    if (cls >= c->num_classes && c->num_classes > 0)
        ddm_fatal("--class %d: the model has classes 0 to %d", cls, c->num_classes - 1);
    if (!steps) steps = ddpm ? 250 : 50;
    long per = (long)c->in_channels * c->height * c->width;
    float *x = xmalloc(n * per * sizeof(float));
    int *y = NULL;
    Rng rng;
    rng_init(&rng, seed, 0x5A3F);
    if (c->num_classes > 0) {
        y = xmalloc(n * sizeof(int));
        choose_labels(y, n, c->num_classes, cls, &rng);
    } else if (cfg_scale != 1) {
        ddm_fatal("--cfg needs a class-conditional model");
    }
    rng_normal_fill(&rng, x, n * per);
    int chunk = cfg_scale != 1 ? 2 * batch : batch;
    ModelCtx mc = {m, chunk, xmalloc((size_t)chunk * dit_out_channels(c) * c->height * c->width * sizeof(float))};
    Denoiser d = {model_denoise, &mc, c->in_channels, c->height, c->width, cfg_scale, c->num_classes};
    SitPath path = !strcmp(tc.objective, "sit_gvp") ? SIT_GVP : SIT_LINEAR;
    double t0 = now_seconds();
    fprintf(stderr, "ddm sample: %d samples, %s, %d steps, cfg %g, %s weights\n", n, sampler, steps, cfg_scale,
            raw ? "raw" : "EMA");
    if (!strcmp(sampler, "heun")) sit_sample_ode(&d, path, ODE_HEUN, steps, x, y, n);
    else if (!strcmp(sampler, "euler")) sit_sample_ode(&d, path, ODE_EULER, steps, x, y, n);
    else if (!strcmp(sampler, "sde")) sit_sample_sde(&d, path, steps, last_step, x, y, n, &rng);
    else ddpm_sample(&d, steps, !strcmp(sampler, "ddim"), eta, clip, x, y, n, &rng);
    fprintf(stderr, "ddm sample: %.1f s (%.2f images/s)\n", now_seconds() - t0, n / (now_seconds() - t0));
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
    free(x); free(y); free(mc.buf);
    dit_free(m);
    return 0;
}
