// ddm bench: training and sampling throughput on fixed configurations, a per-op time breakdown,
// GFLOP/s against this machine's measured GEMM peak, peak memory, and the PyTorch twin timed in the
// same run (same configuration, threads and environment).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "config/args.h"
#include "cli/cli.h"
#include "common.h"
#include "loss/dispersive.h"
#include "nn/dit.h"
#include "ops/profile.h"
#include "rng.h"
#include "infer/generate.h"
#include "train/step.h"

typedef struct { const char *name; DitConfig m; int batch; } BenchConfig;

static const BenchConfig configs[] = {
    {"tiny", {.depth = 2, .hidden = 64, .heads = 2, .patch = 4, .in_channels = 1, .height = 28, .width = 28,
              .num_classes = 10, .mlp_ratio = 4}, 64},
    {"S/4", {.depth = 12, .hidden = 384, .heads = 6, .patch = 4, .in_channels = 1, .height = 28, .width = 28,
             .num_classes = 10, .mlp_ratio = 4}, 64},
    {"B/4", {.depth = 12, .hidden = 768, .heads = 12, .patch = 4, .in_channels = 4, .height = 32, .width = 32,
             .num_classes = 1000, .learn_sigma = 1, .mlp_ratio = 4}, 32},
};

typedef struct {
    double img_s, step_ms, gflops, disp_share, peak_mb, sample_img_s;
    double twin_img_s, twin_peak_mb;
} BenchResult;

typedef struct {
    int steps, warmup, sample_steps, sample_n, threads, twin, gemm_reps, cpu_clock;
    double peak_gflops;
    const char *precision;
    const Ops *ops;            // ops_cpu or ops_cpu_bf16
} BenchOpts;

static double measure_gemm_peak(void) {
    const int n = 2048;
    float *a = xmalloc((size_t)n * n * 4), *b = xmalloc((size_t)n * n * 4), *c = xmalloc((size_t)n * n * 4);
    for (long i = 0; i < (long)n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    // Best of several after two warm-up calls: the first calls pay for thread start-up and page faults,
    // and a shared machine has noisy moments; the peak is what the hardware can do.
    for (int r = 0; r < 2; r++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    double best = 0;
    for (int r = 0; r < 8; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * n / (now_seconds() - t0) / 1e9;
        best = g > best ? g : best;
    }
    free(a); free(b); free(c);
    return best;
}

static void print_op_table(int steps) {
    OpTiming t[64];
    int n = ops_profile_report(t, 64);
    double tot[PHASE_COUNT] = {0};
    for (int i = 0; i < n; i++) for (int p = 0; p < PHASE_COUNT; p++) tot[p] += t[i].seconds[p];
    printf("    %-20s %10s %10s %10s\n", "op (ms per step)", "forward", "backward", "optimizer");
    for (int i = 0; i < n; i++)
        printf("    %-20s %10.2f %10.2f %10.2f\n", t[i].name, 1e3 * t[i].seconds[0] / steps,
               1e3 * t[i].seconds[1] / steps, 1e3 * t[i].seconds[2] / steps);
    printf("    %-20s %10.2f %10.2f %10.2f\n", "total in ops", 1e3 * tot[0] / steps, 1e3 * tot[1] / steps,
           1e3 * tot[2] / steps);
}

// One configuration, in a child process so that peak memory is its own.
static BenchResult run_config(const BenchConfig *bc, const BenchOpts *o) {
    BenchResult r = {0};
    const DitConfig *c = &bc->m;
    int B = bc->batch;
    Dit *m = dit_create(c, ops_profile_wrap(o->ops));
    dit_init(m, 0);
    long n = (long)c->in_channels * c->height * c->width;
    StepBatch sb;   // one fixed batch, uploaded once (the timed steps are the device's work)
    step_batch_init(&sb, m, B);
    Rng rng;
    rng_init(&rng, 1, 2);
    for (long i = 0; i < B * n; i++) sb.h_x[i] = 2 * rng_uniform(&rng) - 1;
    rng_normal_fill(&rng, sb.h_noise, B * n);
    for (int b = 0; b < B; b++) { sb.h_t[b] = rng_uniform(&rng); sb.h_y[b] = rng_int(&rng, c->num_classes); }
    step_upload(&sb, m, B);
    Objective obj;
    objective_init(&obj, OBJ_SIT_LINEAR);
    objective_bind(&obj, m->ops, B);
    int block = c->depth / 4 > 0 ? c->depth / 4 - 1 : 0;   // the paper's default block
    DispSetup d;
    disp_setup_init(&d, m, DISP_INFONCE_L2, 0.5f, 0.5f, 1.0f, &block, 1, B);
    OptimState os;
    optim_init(&os, m);
    double t0 = 0, disp_s = 0;
    for (int s = 0; s < o->warmup + o->steps; s++) {
        if (s == o->warmup) { ops_profile_reset(); t0 = now_seconds(); disp_s = 0; }
        LossParts lp = step_loss_and_grads(m, &obj, &d, &sb, B, NULL);
        disp_s += lp.disp_seconds;
        optim_clip(m, 1.0f);
        optim_adamw(m, &os, s, 1e-4f, 0.9f, 0.999f, 1e-8f, 0);
        optim_ema(m, &os, 0.9999f);
    }
    m->ops->synchronize();
    double dt = now_seconds() - t0;
    r.step_ms = 1e3 * dt / o->steps;
    r.img_s = B * o->steps / dt;
    r.gflops = 3 * dit_forward_flops(c, B) * o->steps / dt / 1e9;
    r.disp_share = disp_s / dt;
    printf("  %s: %d blocks x %d hidden, %d heads, patch %d, %dx%dx%d, batch %d, %.2fM parameters\n", bc->name,
           c->depth, c->hidden, c->heads, c->patch, c->height, c->width, c->in_channels, B,
           dit_trainable_count(m) / 1e6);
    print_op_table(o->steps);
    if (o->sample_steps > 0) {   // the same path as `ddm sample`: Heun ODE, no guidance
        TrainConfig tc;
        train_config_defaults(&tc);
        GenerateOpts g;
        generate_opts_defaults(&g);
        strcpy(g.sampler, "heun");
        g.steps = o->sample_steps;
        int ns = o->sample_n < B ? o->sample_n : B;
        g.batch = ns;
        double s0 = now_seconds();
        free(generate_samples(m, &tc, &g, ns, NULL));
        r.sample_img_s = ns / (now_seconds() - s0);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.peak_mb = ru.ru_maxrss / 1024.0;
    return r;
}

// OpenMP (libgomp) cannot be used in a child forked after the parent started its thread pool, so the
// parent never computes: the GEMM peak and every configuration run in children of their own.
typedef void (*ChildFn)(const void *arg, const BenchOpts *o, BenchResult *r);

static BenchResult in_child(ChildFn fn, const void *arg, const BenchOpts *o, const char *what) {
    fflush(stdout);
    int fd[2];
    if (pipe(fd)) ddm_fatal("pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        BenchResult r = {0};
        fn(arg, o, &r);
        fflush(stdout);
        _exit(write(fd[1], &r, sizeof r) == sizeof r ? 0 : 3);
    }
    close(fd[1]);
    BenchResult r = {0};
    ssize_t got = read(fd[0], &r, sizeof r);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != sizeof r || !WIFEXITED(status) || WEXITSTATUS(status)) ddm_fatal("bench of %s failed", what);
    return r;
}

static void child_peak(const void *arg, const BenchOpts *o, BenchResult *r) {
    (void)arg; (void)o;
    r->gflops = measure_gemm_peak();
}

static void child_config(const void *arg, const BenchOpts *o, BenchResult *r) { *r = run_config(arg, o); }

static void child_gemm(const void *arg, const BenchOpts *o, BenchResult *r) {
    const BenchConfig *bc = arg;
    (void)r;
    bench_gemm(bc->name, &bc->m, bc->batch, o->gemm_reps, o->threads, o->cpu_clock);
}

static void run_twin(const BenchConfig *bc, const BenchOpts *o, BenchResult *r) {
    const DitConfig *c = &bc->m;
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tools/bench_twin.py --depth %d --hidden %d --heads %d --patch %d --channels %d "
             "--size %d --classes %d --learn-sigma %d --batch %d --steps %d --warmup %d --threads %d 2>&1",
             c->depth, c->hidden, c->heads, c->patch, c->in_channels, c->height, c->num_classes, c->learn_sigma,
             bc->batch, o->steps, o->warmup, o->threads);
    FILE *p = popen(cmd, "r");
    if (!p) return;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "twin img/s %lf peak_mb %lf", &r->twin_img_s, &r->twin_peak_mb) != 2 && strstr(line, "Error"))
            fprintf(stderr, "  twin: %s", line);
    pclose(p);
}

int cmd_bench(int argc, char **argv) {
    char which[32] = "all", json[512] = "", precision[8] = "fp32", device[16] = "";
    int gemm = 0, batch = 0, twin_compile = 1;
    BenchOpts o = {.steps = 5, .warmup = 2, .sample_steps = 50, .sample_n = 16, .threads = 0, .twin = 1,
                   .gemm_reps = 10};
    ArgSpec specs[] = {
        {"model", ARG_STR, which, sizeof which, 0, 0, "tiny | S/4 | B/4 | all; with --device cuda: SiT-B/2 | SiT-XL/2 | sit (both)", 0, NULL},
        {"steps", ARG_INT, &o.steps, 0, 1, 100000, "timed training steps per configuration", 0, NULL},
        {"warmup", ARG_INT, &o.warmup, 0, 0, 100000, "untimed steps first", 0, NULL},
        {"sample-steps", ARG_INT, &o.sample_steps, 0, 0, 100000, "Heun steps of the sampling benchmark (0 = skip)", 0, NULL},
        {"sample-n", ARG_INT, &o.sample_n, 0, 1, 65536, "images in the sampling benchmark (at most the batch)", 0, NULL},
        {"twin", ARG_BOOL, &o.twin, 0, 0, 1, "also time the PyTorch twin (needs python3-torch)", 0, NULL},
        {"json", ARG_STR, json, sizeof json, 0, 0, "also write the results as JSON", 0, NULL},
        {"threads", ARG_INT, &o.threads, 0, 0, 1024, "threads (0 = all cores)", 0, NULL},
        {"precision", ARG_STR, precision, sizeof precision, 0, 0, CLI_PRECISION_HELP "; the twin stays fp32", 0, NULL},
        CLI_DEVICE_FLAG(device),
        {"gemm", ARG_BOOL, &gemm, 0, 0, 1, "instead: time each matrix multiply of a training step in fp32 (sgemm) and bf16, GFLOP/s", 0, NULL},
        {"gemm-reps", ARG_INT, &o.gemm_reps, 0, 1, 100000, "--gemm: timed calls per matrix multiply (the best counts)", 0, NULL},
        {"cpu-clock", ARG_BOOL, &o.cpu_clock, 0, 0, 1, "--gemm with --threads 1: time by the thread's CPU clock (leaves out time descheduled on a busy machine)", 0, NULL},
        {"batch", ARG_INT, &batch, 0, 0, 65536, "--device cuda: batch size (0 = 256 or the largest that fits)", 0, NULL},
        {"twin-compile", ARG_BOOL, &twin_compile, 0, 0, 1, "--device cuda: also time the twin under torch.compile", 0, NULL},
    };
    ArgParser p = {"bench", "Time training and sampling on fixed configurations, beside the PyTorch twin.", specs,
                   sizeof specs / sizeof specs[0]};
    args_parse(&p, argc, argv);
    if (o.threads == 0) o.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cli_set_threads(o.threads);
    o.precision = precision;
    o.ops = cli_ops(device, precision);
    // the GPU bench runs in this process (a CUDA context does not survive the fork the CPU bench uses)
    if (!strcmp(o.ops->device, "cuda"))
        return bench_cuda(o.ops, !strcmp(which, "all") ? "sit" : which, batch, o.steps, o.warmup, o.twin, twin_compile, json);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("ddm bench: device %s, %d threads, OPENBLAS_CORETYPE=%s, %s, precision %s\n", ops_device_label(o.ops), o.threads, core ? core : "(unset)",
           openblas_get_config(), gemm ? "fp32 and bf16" : precision);
    if (gemm) {
        int ran = 0;
        for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++)
            if (!strcmp(which, "all") || !strcmp(which, configs[i].name)) {
                in_child(child_gemm, &configs[i], &o, configs[i].name);
                ran++;
            }
        if (!ran) ddm_fatal("--model '%s': expected tiny, S/4, B/4 or all", which);
        return 0;
    }
    o.peak_gflops = in_child(child_peak, NULL, &o, "the GEMM peak").gflops;
    printf("  sgemm 2048^3 peak: %.1f GFLOP/s (2 FLOPs per multiply-add)\n", o.peak_gflops);
    int n = sizeof configs / sizeof configs[0], ran = 0;
    BenchResult res[8];
    const char *names[8];
    for (int i = 0; i < n; i++) {
        if (strcmp(which, "all") && strcmp(which, configs[i].name)) continue;
        BenchResult r = in_child(child_config, &configs[i], &o, configs[i].name);
        if (o.twin) run_twin(&configs[i], &o, &r);
        res[ran] = r;
        names[ran++] = configs[i].name;
    }
    if (!ran) ddm_fatal("--model '%s': expected tiny, S/4, B/4 or all", which);
    printf("\n%-6s %9s %9s %9s %8s %7s %9s %10s %10s %8s %10s\n", "config", "img/s", "step ms", "GFLOP/s", "of peak",
           "disp", "peak MB", "sample/s", "twin img/s", "ratio", "twin MB");
    for (int i = 0; i < ran; i++) {
        BenchResult *r = &res[i];
        printf("%-6s %9.1f %9.1f %9.1f %7.1f%% %6.2f%% %9.0f %10.2f %10.1f %7.2fx %10.0f\n", names[i], r->img_s,
               r->step_ms, r->gflops, 100 * r->gflops / o.peak_gflops, 100 * r->disp_share, r->peak_mb,
               r->sample_img_s, r->twin_img_s, r->twin_img_s > 0 ? r->img_s / r->twin_img_s : 0, r->twin_peak_mb);
    }
    printf("GFLOP/s counts matrix multiplies only (training step = 3x forward); sample/s: %d-step Heun ODE.\n",
           o.sample_steps);
    if (json[0]) {
        AtomicFile af = atomic_open(json);
        fprintf(af.f, "{\"threads\":%d,\"precision\":\"%s\",\"gemm_peak_gflops\":%.2f,\"configs\":[", o.threads,
                precision, o.peak_gflops);
        for (int i = 0; i < ran; i++) {
            BenchResult *r = &res[i];
            fprintf(af.f, "%s{\"name\":\"%s\",\"img_per_s\":%.3f,\"step_ms\":%.3f,\"gflops\":%.3f,\"disp_share\":%.5f,"
                    "\"peak_mb\":%.1f,\"sample_img_per_s\":%.3f,\"twin_img_per_s\":%.3f,\"twin_peak_mb\":%.1f}",
                    i ? "," : "", names[i], r->img_s, r->step_ms, r->gflops, r->disp_share, r->peak_mb, r->sample_img_s,
                    r->twin_img_s, r->twin_peak_mb);
        }
        fprintf(af.f, "]}\n");
        atomic_commit(&af);
    }
    return 0;
}
