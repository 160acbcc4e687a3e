// The CPU ops that are not matrix multiplies, timed on SiT-S/4's shapes (28x28, patch 4: T 49, C 384, MLP 1536,
// batch 64) through the op table, by the thread's CPU time on one thread, best of 7: a figure that other processes
// on a shared machine hardly move. Built against a build's libddm.a it times that build's kernels, so the same file
// compares the levels of one binary (DDM_CPU_ISA=v2|v3|v4) and builds with other flags (docs/performance.md,
// "Portable build"). It uses only ops_cpu, which names the chosen table in every build.
//   cc -O2 -std=gnu11 -fopenmp -Iinclude -Isrc tools/bench/cpu_isa_ops.c build/libddm.a -lopenblas -llapacke
//      -lcjson -lstb -lpng -ljpeg -lz -lm -pthread -o /tmp/isa_ops && OMP_NUM_THREADS=1 /tmp/isa_ops
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "ops/ops.h"

static double thread_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static float *filled(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = scale * (float)((i * 2654435761u % 2001) / 1000.0 - 1.0);
    return p;
}

#define TIME(label, call)                                                                       \
    do {                                                                                        \
        double best = 1e9;                                                                      \
        for (int rep = 0; rep < 7; rep++) {                                                     \
            double t0 = thread_seconds();                                                       \
            call;                                                                               \
            double t = thread_seconds() - t0;                                                   \
            best = t < best ? t : best;                                                         \
        }                                                                                       \
        printf("%-20s %9.3f ms\n", label, 1e3 * best);                                          \
        total += best;                                                                          \
    } while (0)

int main(void) {
    enum { B = 64, T = 49, C = 384, H = 1536, NH = 6 };
    const Ops *o = &ops_cpu;
    size_t rows = (size_t)B * T, nparam = (size_t)8 << 20;
    float *a = filled(rows * H, 1), *b = filled(rows * H, 0.5f), *c = filled(rows * H, 2), *bias = filled(H, 1);
    float *qkv = filled(rows * 3 * C, 1), *dqkv = filled(rows * 3 * C, 1), *mod = filled((size_t)B * 6 * C, 0.1f);
    float *mean = filled(rows, 0), *rstd = filled(rows, 1), *saved = filled((size_t)B * NH * T * (T + 1), 0);
    float *p = filled(nparam, 1), *g = filled(nparam, 1e-3f), *m = filled(nparam, 0), *v = filled(nparam, 1e-6f);
    double total = 0;
    TIME("add_bias", o->add_bias(a, bias, (int)rows, H));
    TIME("bias_grad", o->bias_grad(bias, b, (int)rows, H));
    TIME("gelu_fwd", o->gelu_fwd(a, b, (long)(rows * H)));
    TIME("gelu_bwd", o->gelu_bwd(a, c, b, (long)(rows * H)));
    TIME("ln_modulate_fwd", o->ln_modulate_fwd(a, mean, rstd, b, mod, mod + C, B, T, C, 6 * C));
    TIME("ln_modulate_bwd", o->ln_modulate_bwd(a, mod, mod + C, b, c, mean, rstd, mod + 2 * C, B, T, C, 6 * C));
    TIME("gated_residual_fwd", o->gated_residual_fwd(a, mod, b, B, T, C, 6 * C));
    TIME("gated_residual_bwd", o->gated_residual_bwd(a, mod, b, mod + C, c, B, T, C, 6 * C));
    TIME("attention_fwd", o->attention_fwd(b, saved, qkv, B, T, C, NH));
    TIME("attention_bwd", o->attention_bwd(dqkv, a, qkv, b, saved, B, T, C, NH));
    TIME("adamw (8M)", o->adamw(p, g, m, v, nparam, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.5f, 0.5f));
    TIME("ema (8M)", o->ema(m, p, nparam, 0.999f));
    printf("%-20s %9.3f ms\n", "total", 1e3 * total);
    return 0;
}
