// ddm forward: one model evaluation on given inputs, for parity checks against PyTorch.
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "model/model_load.h"
#include "common.h"
#include "io/npy.h"

static void expect_shape(const NpyArray *a, const char *path, int ndim, const int64_t *shape) {
    int ok = a->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = a->shape[i] == shape[i];
    if (ok) return;
    char got[128] = "", want[128] = "";
    for (int i = 0; i < a->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)a->shape[i]);
    for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
    ddm_fatal("%s: shape [%s], expected [%s]", path, got, want);
}

int cmd_forward(int argc, char **argv) {
    char ckpt[512] = "", xp[512] = "", tp[512] = "", yp[512] = "", outp[512] = "", bout[512] = "";
    char precision[8] = "fp32", device[16] = "";
    int block = -1, ema = 0, threads = 0;
    ArgSpec specs[] = {
        {"ckpt", ARG_STR, ckpt, sizeof ckpt, 0, 0, "checkpoint (.safetensors)", 0, NULL},
        {"x", ARG_STR, xp, sizeof xp, 0, 0, "model input x_t, float32 .npy [B, C, H, W]", 0, NULL},
        {"t", ARG_STR, tp, sizeof tp, 0, 0, "timesteps .npy [B], passed to the timestep embedder as given", 0, NULL},
        {"y", ARG_STR, yp, sizeof yp, 0, 0, "labels .npy [B] (class-conditional models; num_classes = null)", 0, NULL},
        {"out", ARG_STR, outp, sizeof outp, 0, 0, "output .npy [B, Cout, H, W]", 0, NULL},
        {"block", ARG_INT, &block, 0, -1, 1024, "also write this block's output (0-based)", 0, NULL},
        {"block-out", ARG_STR, bout, sizeof bout, 0, 0, "where to write the block output .npy [B, T, hidden]", 0, NULL},
        {"ema", ARG_BOOL, &ema, 0, 0, 1, "use the EMA weights", 0, NULL},
        {"threads", ARG_INT, &threads, 0, 0, 1024, "threads (0 = all cores)", 0, NULL},
        {"precision", ARG_STR, precision, sizeof precision, 0, 0, CLI_PRECISION_HELP " (not the checkpoint's: fp32 unless given)", 0, NULL},
        CLI_DEVICE_FLAG(device),
    };
    ArgParser p = {"forward", "Run the model once on .npy inputs and write its output (float32 .npy).", specs,
                   sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    cli_set_threads(threads);
    const Ops *ops = cli_ops(device, precision);
    if (!ckpt[0] || !xp[0] || !tp[0] || !outp[0]) ddm_fatal("ddm forward needs --ckpt, --x, --t and --out");
    if ((block >= 0) != (bout[0] != 0)) ddm_fatal("--block and --block-out go together");
    TrainConfig cfg;
    Dit *m = model_load(ckpt, ema, ops, &cfg);
    const DitConfig *c = &m->cfg;
    if (block >= c->depth) ddm_fatal("--block %d: the model has blocks 0 to %d", block, c->depth - 1);
    NpyArray x = npy_load_f32(xp), t = npy_load_f32(tp);
    int B = x.ndim > 0 ? (int)x.shape[0] : 0;
    int64_t xs[4] = {B, c->in_channels, c->height, c->width}, ts[1] = {B};
    expect_shape(&x, xp, 4, xs);
    expect_shape(&t, tp, 1, ts);
    int *y = NULL;
    if (c->num_classes > 0) {
        if (!yp[0]) ddm_fatal("the model is class-conditional: give labels with --y (%d = null class)", c->num_classes);
        NpyArray ya = npy_load_f32(yp);
        expect_shape(&ya, yp, 1, ts);
        y = xmalloc(B * sizeof(int));
        for (int b = 0; b < B; b++) {
            if (!(ya.data[b] == (int)ya.data[b])) ddm_fatal("%s: label %g of sample %d is not an integer", yp, ya.data[b], b);
            y[b] = (int)ya.data[b];
        }
        dit_check_labels(c, y, B, yp);
        npy_free(&ya);
    }
    // up to the device, one forward, down again
    int Cout = dit_out_channels(c);
    long hw = (long)c->height * c->width;
    float *dx = ops_alloc_f32(ops, (size_t)B * c->in_channels * hw), *dt = ops_alloc_f32(ops, B);
    float *dout = ops_alloc_f32(ops, (size_t)B * Cout * hw);
    int *dy = y ? ops->alloc((size_t)B * sizeof(int)) : NULL;
    ops_upload_f32(ops, dx, x.data, (size_t)B * c->in_channels * hw);
    ops_upload_f32(ops, dt, t.data, B);
    if (y) ops->upload(dy, y, (size_t)B * sizeof(int));
    dit_forward(m, dout, dx, dt, dy, B);
    float *out = xmalloc((size_t)B * Cout * hw * sizeof(float));
    ops_download_f32(ops, out, dout, (size_t)B * Cout * hw);
    int64_t os[4] = {B, Cout, c->height, c->width};
    npy_save_f32(outp, 4, os, out);
    if (block >= 0) {
        int64_t bs[3] = {B, dit_num_tokens(c), c->hidden};
        size_t nb = (size_t)B * bs[1] * bs[2];
        float *z = xmalloc(nb * sizeof(float));
        ops_download_f32(ops, z, m->a.blk[block].out, nb);
        npy_save_f32(bout, 3, bs, z);
        free(z);
    }
    ops->free(dx); ops->free(dt); ops->free(dout); ops->free(dy);
    free(out);
    free(y);
    npy_free(&x);
    npy_free(&t);
    dit_free(m);
    return 0;
}
