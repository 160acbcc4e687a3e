// Subcommands of the ddm tool, one file each.
#pragma once
#include "nn/dit.h"
int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_pca(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_classifier(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_tensorboard(int argc, char **argv);
int cmd_export(int argc, char **argv);
// Applies --threads (0 = all cores) to OpenMP and OpenBLAS.
void cli_set_threads(int n);
// --device and --precision -> the op table (ops_select); "" = the default device ($DDM_DEVICE, else cpu). A
// one-line error for an unknown device (naming the devices of this build), another precision or bf16 without
// AVX512_BF16.
const Ops *cli_ops(const char *device, const char *precision);
#define CLI_PRECISION_HELP "fp32 | bf16: matrix multiplies in bf16 with fp32 accumulation (needs AVX512_BF16: an error otherwise, no fallback)"
#define CLI_DEVICE_HELP "cpu | cpu-isolated (a test device whose memory the host cannot read) | cuda (a CUDA build); default $DDM_DEVICE, else cpu"
// The --device flag of a command (dst: char[16]).
#define CLI_DEVICE_FLAG(dst) {"device", ARG_STR, (dst), sizeof (dst), 0, 0, CLI_DEVICE_HELP, 0, NULL}

// ddm bench --gemm: times each matrix multiply of one training step of c (batch B) with sgemm and with
// the bf16 GEMM and prints GFLOP/s (src/cli/bench_gemm.c); cpu_clock: the thread's CPU time (1 thread).
void bench_gemm(const char *name, const DitConfig *c, int batch, int reps, int threads, int cpu_clock);
// ddm bench --device cuda (src/cli/bench_cuda.c): SiT-B/2 and SiT-XL/2 on the GPU beside the PyTorch twin;
// which: "SiT-B/2", "SiT-XL/2" or "sit"; batch 0 = 256 or the largest that fits.
int bench_cuda(const Ops *ops, const char *which, int batch, int steps, int warmup, int twin, int twin_compile,
               const char *json);

// The generation flags shared by `ddm sample` and `ddm eval --ckpt` (g: a GenerateOpts, raw: an int), so the
// two commands accept the same sampler settings with the same ranges.
#define CLI_GENERATE_FLAGS(g, raw)                                                                                  \
    {"batch", ARG_INT, &(g).batch, 0, 1, 65536, "samples per model call", 0, NULL},                                      \
    {"sampler", ARG_STR, (g).sampler, sizeof (g).sampler, 0, 0, "heun | euler | sde (SiT); ddpm | ddim (DDPM) [heun / ddpm]", 0, NULL}, \
    {"steps", ARG_INT, &(g).steps, 0, 0, 100000, "sampling steps (0 = 50 for SiT, 250 for DDPM)", 0, NULL},             \
    {"cfg", ARG_FLOAT, &(g).cfg_scale, 0, 0, 100, "classifier-free guidance scale (1 = off)", 0, NULL},                 \
    {"class", ARG_INT, &(g).cls, 0, -2, 1e6, "class of every sample; -1 random; -2 cycle through the classes", 0, NULL}, \
    {"raw", ARG_BOOL, &(raw), 0, 0, 1, "use the raw weights instead of the EMA", 0, NULL},                             \
    {"eta", ARG_FLOAT, &(g).eta, 0, 0, 1, "DDIM eta", 0, NULL},                                                          \
    {"clip-x0", ARG_BOOL, &(g).clip_x0, 0, 0, 1, "DDPM/DDIM: clip the predicted x0 to [-1, 1]", 0, NULL},                \
    {"last-step", ARG_FLOAT, &(g).last_step, 0, 0, 0.5, "SDE: size of the final noise-free step", 0, NULL}
