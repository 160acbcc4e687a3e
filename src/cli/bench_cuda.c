// ddm bench --device cuda: SiT-B/2 and SiT-XL/2 training on ImageNet-256's SD-VAE latent shape (4 x 32 x 32,
// learned sigma, 1000 classes) with Dispersive Loss (InfoNCE-L2, lambda 0.5, tau 0.5, block depth/4), batch 256 or
// the largest that fits: img/s, peak device memory, MFU against a bf16 GEMM peak measured in the same run, a
// per-op breakdown of the model, and the PyTorch twin on the same GPU (eager and torch.compile, bf16 autocast).
// In-process, not in forked children as the CPU bench: a CUDA context does not survive fork.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "common.h"

#ifdef DDM_CUDA
#include "loss/dispersive.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/profile.h"
#include "rng.h"
#include "train/step.h"

typedef struct { const char *name; DitConfig m; } GpuConfig;

static const GpuConfig gpu_configs[] = {
    {"SiT-B/2", {.depth = 12, .hidden = 768, .heads = 12, .patch = 2, .in_channels = 4, .height = 32, .width = 32,
                 .num_classes = 1000, .learn_sigma = 1, .mlp_ratio = 4}},
    {"SiT-XL/2", {.depth = 28, .hidden = 1152, .heads = 16, .patch = 2, .in_channels = 4, .height = 32, .width = 32,
                  .num_classes = 1000, .learn_sigma = 1, .mlp_ratio = 4}},
};

typedef struct {
    const char *name;
    int batch;
    double img_s, step_ms, tflops, mfu, peak_gib, twin_img_s[2], twin_peak_gib[2];
} GpuResult;

static double gib(size_t b) { return b / 1073741824.0; }

// Device bytes per sample of one training step, measured: the activation arena for one sample, plus what grows
// with the batch outside it (the batch, the Dispersive gradient, the bf16 copies of the largest GEMM operand).
static size_t bytes_per_sample(Dit *m) {
    size_t before, after;
    ops_cuda_memory(&before, NULL, NULL, NULL);
    dit_reserve(m, 1);
    ops_cuda_memory(&after, NULL, NULL, NULL);
    const DitConfig *c = &m->cfg;
    size_t T = (size_t)dit_num_tokens(c), H = c->hidden, F = (size_t)c->mlp_ratio * H;
    size_t img = (size_t)c->in_channels * c->height * c->width;
    return (after - before) + 8 * img * 4 + T * H * 4 + T * F * 2 * 2;
}

static int choose_batch(Dit *m, int want, const char *name) {
    size_t per = bytes_per_sample(m), fr = 0;
    ops_cuda_memory(NULL, NULL, &fr, NULL);
    // keep 6 GiB for the attention's chunk scratch (about 2.5 GiB), cuBLAS and fragmentation
    size_t reserve = (size_t)6 << 30;
    long fit = fr > reserve ? (long)((fr - reserve) / per) : 0;
    long b = fit < want ? fit : want;
    b -= b % 8;
    printf("  %zu MiB per sample, %.1f GiB free: batch %ld%s\n", per >> 20, gib(fr), b,
           b < want ? " (the largest that fits)" : "");
    if (b < 8) ddm_fatal("bench: %s does not fit the GPU at batch 8", name);
    return (int)b;
}

static void print_profile(int steps) {
    OpTiming t[64];
    int n = ops_profile_report(t, 64);
    double tot = 0;
    for (int i = 0; i < n; i++) tot += t[i].seconds[0] + t[i].seconds[1] + t[i].seconds[2];
    printf("    %-20s %10s %10s %7s   (model ops, each timed with a synchronize)\n", "op (ms per step)", "forward",
           "backward", "share");
    for (int i = 0; i < n; i++) {
        double s = t[i].seconds[0] + t[i].seconds[1] + t[i].seconds[2];
        printf("    %-20s %10.2f %10.2f %6.1f%%\n", t[i].name, 1e3 * t[i].seconds[0] / steps, 1e3 * t[i].seconds[1] / steps,
               100 * s / tot);
    }
}

static GpuResult run_gpu_config(const GpuConfig *gc, const Ops *ops, int batch, int steps, int warmup, double peak) {
    GpuResult r = {.name = gc->name};
    const DitConfig *c = &gc->m;
    ops_cuda_reset_peak();
    Dit *m = dit_create(c, ops);
    dit_init(m, 0);
    OptimState os;
    optim_init(&os, m);
    int B = r.batch = batch > 0 ? batch : choose_batch(m, 256, gc->name);
    StepBatch sb;
    step_batch_init(&sb, m, B);
    Rng rng;
    rng_init(&rng, 1, 2);
    long n = sb.n;
    rng_normal_fill(&rng, sb.h_x, B * n);   // latents: roughly unit Gaussian
    rng_normal_fill(&rng, sb.h_noise, B * n);
    for (int b = 0; b < B; b++) { sb.h_t[b] = rng_uniform(&rng); sb.h_y[b] = rng_int(&rng, c->num_classes); }
    step_upload(&sb, m, B);
    Objective obj;
    objective_init(&obj, OBJ_SIT_LINEAR);
    objective_bind(&obj, ops, B);
    int block = c->depth / 4 - 1;   // the paper's block (depth/4, 1-based)
    DispSetup d;
    disp_setup_init(&d, m, DISP_INFONCE_L2, 0.5f, 0.5f, 1.0f, &block, 1, B);
    double t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) { ops->synchronize(); t0 = now_seconds(); }
        step_loss_and_grads(m, &obj, &d, &sb, B, NULL);
        optim_clip(m, 1.0f);
        optim_adamw(m, &os, s, 1e-4f, 0.9f, 0.999f, 1e-8f, 0);
        optim_ema(m, &os, 0.9999f);
    }
    ops->synchronize();
    double dt = now_seconds() - t0;
    r.step_ms = 1e3 * dt / steps;
    r.img_s = (double)B * steps / dt;
    r.tflops = 3 * dit_forward_flops(c, B) * steps / dt / 1e12;
    r.mfu = peak > 0 ? r.tflops / peak : 0;
    size_t pk;
    ops_cuda_memory(NULL, &pk, NULL, NULL);
    r.peak_gib = gib(pk);
    printf("  %s: %d blocks x %d hidden, %d heads, patch %d, batch %d, %.2fM parameters: %.1f img/s, %.1f ms/step, "
           "%.1f TFLOP/s (%.1f%% MFU), peak %.1f GiB\n", gc->name, c->depth, c->hidden, c->heads, c->patch, B,
           dit_trainable_count(m) / 1e6, r.img_s, r.step_ms, r.tflops, 100 * r.mfu, r.peak_gib);
    // the breakdown: two more steps with the model's ops timed one by one (slower: a synchronize per op)
    m->ops = ops_profile_wrap(ops);
    for (int s = 0; s < 2; s++) step_loss_and_grads(m, &obj, &d, &sb, B, NULL);
    m->ops = ops;
    print_profile(2);
    disp_setup_free(&d, m);
    objective_unbind(&obj);
    step_batch_free(&sb);
    optim_free(&os, m);
    dit_free(m);
    return r;
}

static void run_gpu_twin(const GpuConfig *gc, GpuResult *r, int steps, int warmup, int compile) {
    const DitConfig *c = &gc->m;
    const char *py = getenv("DDM_TWIN_PYTHON");
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd,
             "%s tools/bench_twin.py --device cuda --bf16 %s --depth %d --hidden %d --heads %d --patch %d --channels %d "
             "--size %d --classes %d --learn-sigma %d --batch %d --steps %d --warmup %d --threads 1 2>&1",
             py && *py ? py : "python3", compile ? "--compile" : "", c->depth, c->hidden, c->heads, c->patch,
             c->in_channels, c->height, c->num_classes, c->learn_sigma, r->batch, steps, warmup + (compile ? 2 : 0));
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) return;
    double img = 0, mb = 0;
    while (fgets(line, sizeof line, p)) {
        if (sscanf(line, "twin img/s %lf peak_mb %lf", &img, &mb) == 2) continue;
        if (strstr(line, "Error") || strstr(line, "error")) fprintf(stderr, "  twin: %s", line);
    }
    pclose(p);
    r->twin_img_s[compile] = img;
    r->twin_peak_gib[compile] = mb / 1024;
    printf("  %s twin (PyTorch, %s, bf16 autocast, SDPA): %.1f img/s, peak %.1f GiB\n", gc->name,
           compile ? "torch.compile" : "eager", img, mb / 1024);
}

int bench_cuda(const Ops *ops, const char *which, int batch, int steps, int warmup, int twin, int twin_compile,
               const char *json) {
    setvbuf(stdout, NULL, _IOLBF, 0);   // each result as it comes: a run stopped by a time limit keeps what it had
    printf("ddm bench: device cuda (%s), precision %s\n", ops_cuda_device_name(), ops->precision);
    double peak = ops_cuda_bf16_gemm_tflops(8192, 10);
    printf("  bf16 GEMM 8192^3 peak (cuBLAS, bf16 in/out, fp32 accumulation): %.1f TFLOP/s (2 FLOPs per multiply-add)\n",
           peak);
    GpuResult res[2];
    int ran = 0;
    for (int i = 0; i < 2; i++) {
        const GpuConfig *gc = &gpu_configs[i];
        if (strcmp(which, "sit") && strcmp(which, "all") && strcmp(which, gc->name)) continue;
        GpuResult r = run_gpu_config(gc, ops, batch, steps, warmup, peak);
        if (twin) run_gpu_twin(gc, &r, steps, warmup, 0);
        if (twin && twin_compile) run_gpu_twin(gc, &r, steps, warmup, 1);
        res[ran++] = r;
    }
    if (!ran) ddm_fatal("--model '%s': with --device cuda expected SiT-B/2, SiT-XL/2 or sit (both)", which);
    printf("\n%-9s %6s %9s %9s %9s %6s %8s %11s %11s %9s %9s\n", "config", "batch", "img/s", "step ms", "TFLOP/s", "MFU",
           "peak GiB", "eager img/s", "compile/s", "vs eager", "vs comp.");
    for (int i = 0; i < ran; i++) {
        GpuResult *r = &res[i];
        printf("%-9s %6d %9.1f %9.1f %9.1f %5.1f%% %8.1f %11.1f %11.1f %8.2fx %8.2fx\n", r->name, r->batch, r->img_s,
               r->step_ms, r->tflops, 100 * r->mfu, r->peak_gib, r->twin_img_s[0], r->twin_img_s[1],
               r->twin_img_s[0] > 0 ? r->img_s / r->twin_img_s[0] : 0, r->twin_img_s[1] > 0 ? r->img_s / r->twin_img_s[1] : 0);
    }
    printf("MFU: matrix-multiply FLOPs (training step = 3x forward, 2 per multiply-add) over the measured bf16 GEMM peak.\n");
    if (json && json[0]) {
        AtomicFile af = atomic_open(json);
        fprintf(af.f, "{\"device\":\"%s\",\"precision\":\"%s\",\"bf16_gemm_peak_tflops\":%.2f,\"configs\":[",
                ops_cuda_device_name(), ops->precision, peak);
        for (int i = 0; i < ran; i++) {
            GpuResult *r = &res[i];
            fprintf(af.f, "%s{\"name\":\"%s\",\"batch\":%d,\"img_per_s\":%.3f,\"step_ms\":%.3f,\"tflops\":%.3f,\"mfu\":%.4f,"
                    "\"peak_gib\":%.2f,\"twin_eager_img_per_s\":%.3f,\"twin_compile_img_per_s\":%.3f,"
                    "\"twin_eager_peak_gib\":%.2f,\"twin_compile_peak_gib\":%.2f}", i ? "," : "", r->name, r->batch,
                    r->img_s, r->step_ms, r->tflops, r->mfu, r->peak_gib, r->twin_img_s[0], r->twin_img_s[1],
                    r->twin_peak_gib[0], r->twin_peak_gib[1]);
        }
        fprintf(af.f, "]}\n");
        atomic_commit(&af);
    }
    return 0;
}
#else
int bench_cuda(const Ops *ops, const char *which, int batch, int steps, int warmup, int twin, int twin_compile,
               const char *json) {
    (void)ops; (void)which; (void)batch; (void)steps; (void)warmup; (void)twin; (void)twin_compile; (void)json;
    ddm_fatal("--device cuda: this build has no CUDA backend; build with make cuda");
}
#endif
