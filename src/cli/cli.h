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
// Applies --threads (0 = all cores) to OpenMP and OpenBLAS.
void cli_set_threads(int n);
// --precision fp32 | bf16 -> the CPU ops table; a one-line error for another name or bf16 without AVX512_BF16.
const Ops *cli_precision(const char *precision);
#define CLI_PRECISION_HELP "fp32 | bf16: matrix multiplies in bf16 with fp32 accumulation (needs AVX512_BF16: an error otherwise, no fallback)"

// ddm bench --gemm: times each matrix multiply of one training step of c (batch B) with sgemm and with
// the bf16 GEMM and prints GFLOP/s (src/cli/bench_gemm.c); cpu_clock: the thread's CPU time (1 thread).
void bench_gemm(const char *name, const DitConfig *c, int batch, int reps, int threads, int cpu_clock);
