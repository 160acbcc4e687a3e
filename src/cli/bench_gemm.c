// ddm bench --gemm: the matrix multiplies of one training step of a configuration, each timed with the
// fp32 path (OpenBLAS sgemm, ops_cpu) and the bf16 path (gemm_bf16, ops_cpu_bf16) on the same data,
// leading dimensions and threads as in the model; attention's per-head products run as the attention
// kernels run them, one per (image, head) in an OpenMP loop.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "cli/cli.h"
#include "common.h"
#include "nn/dit.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/ops.h"

typedef struct {
    const char *name;
    int ta, tb, M, N, K, lda, ldb, ldc;
    float beta;                 // 1: accumulates into C (weight gradients)
    long sa[2], sb[2], sc[2];   // per-head calls: offset of call bh = (bh / heads) * s[0] + (bh % heads) * s[1]
    int per_step;               // calls per training step (per-head shapes: loops of B * heads calls)
    int head_loop;              // 1: one call per (image, head) inside an OpenMP loop
} GemmShape;

typedef void (*GemmFn)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);

static long off(const long s[2], int bh, int heads) { return (bh / heads) * s[0] + (bh % heads) * s[1]; }

// floats an operand of rows x cols with leading dimension ld needs over all calls
static long extent(const GemmShape *g, const long s[2], int rows, int ld, int cols, int calls, int heads) {
    long last = g->head_loop ? off(s, calls - 1, heads) : 0;
    return last + (long)(rows - 1) * ld + cols;
}

static int g_cpu_clock;

// The calling thread's CPU time leaves out the time it was descheduled (one thread only).
static double clock_now(void) {
    if (!g_cpu_clock) return now_seconds();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double time_shape(const GemmShape *g, GemmFn fn, const float *A, const float *B, float *C, int calls,
                         int heads, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps + 2; r++) {   // two untimed warm-up rounds
        double t0 = clock_now();
        if (!g->head_loop) {
            fn(g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, g->lda, B, g->ldb, g->beta, C, g->ldc);
        } else {
#pragma omp parallel for schedule(static)
            for (int bh = 0; bh < calls; bh++)
                fn(g->ta, g->tb, g->M, g->N, g->K, 1.0f, A + off(g->sa, bh, heads), g->lda, B + off(g->sb, bh, heads),
                   g->ldb, 0.0f, C + off(g->sc, bh, heads), g->ldc);
        }
        double dt = clock_now() - t0;
        if (r >= 2 && dt < best) best = dt;
    }
    return best;
}

void bench_gemm(const char *name, const DitConfig *c, int batch, int reps, int threads, int cpu_clock) {
    g_cpu_clock = cpu_clock;
    if (cpu_clock && threads != 1) ddm_fatal("--cpu-clock times one thread: use it with --threads 1");
    if (!gemm_bf16_supported()) ddm_fatal("--gemm compares with the bf16 GEMM, which needs AVX512_BF16 (this CPU has none)");
    int B = batch, T = dit_num_tokens(c), H = c->hidden, F = c->mlp_ratio * H, NH = c->heads, hd = H / NH;
    int BT = B * T, P = c->patch * c->patch, Cin = c->in_channels * P, Cout = dit_out_channels(c) * P, D = c->depth;
    long TT = (long)T * T, T3 = (long)T * 3 * H, TH = (long)T * H;
    // Linear y = x W^T: forward (N,T) M = rows, N = out, K = in; dx = dy W (N,N); dW += dy^T x (T,N)
#define FWD(nm, rows, in, out, n) {nm " fwd", 0, 1, rows, out, in, in, in, out, 0, {0}, {0}, {0}, n, 0}
#define DX(nm, rows, in, out, n) {nm " dx", 0, 0, rows, in, out, out, in, in, 0, {0}, {0}, {0}, n, 0}
#define DW(nm, rows, in, out, n) {nm " dW", 1, 0, out, in, rows, out, in, in, 1, {0}, {0}, {0}, n, 0}
#define LIN(nm, rows, in, out, n) FWD(nm, rows, in, out, n), DX(nm, rows, in, out, n), DW(nm, rows, in, out, n)
    GemmShape shapes[] = {
        FWD("patch embed", BT, Cin, H, 1), DW("patch embed", BT, Cin, H, 1),   // no input gradient in training
        LIN("adaLN", B, H, 6 * H, D),
        LIN("qkv", BT, H, 3 * H, D),
        LIN("proj", BT, H, H, D),
        LIN("fc1", BT, H, F, D),
        LIN("fc2", BT, F, H, D),
        LIN("final", BT, H, Cout, 1),
        // per head: q, k, v inside qkv [B, T, 3H]; P, dP [B, NH, T, T]; y, dy [B, T, H]
        {"attn QK^T", 0, 1, T, T, hd, 3 * H, 3 * H, T, 0, {T3, hd}, {T3, hd}, {NH * TT, TT}, D, 1},
        {"attn PV", 0, 0, T, hd, T, T, 3 * H, H, 0, {NH * TT, TT}, {T3, hd}, {TH, hd}, D, 1},
        {"attn dP", 0, 1, T, T, hd, H, 3 * H, T, 0, {TH, hd}, {T3, hd}, {NH * TT, TT}, D, 1},
        {"attn dV", 1, 0, T, hd, T, T, H, 3 * H, 0, {NH * TT, TT}, {TH, hd}, {T3, hd}, D, 1},
        {"attn dQ", 0, 0, T, hd, T, T, 3 * H, 3 * H, 0, {NH * TT, TT}, {T3, hd}, {T3, hd}, D, 1},
        {"attn dK", 1, 0, T, hd, T, T, 3 * H, 3 * H, 0, {NH * TT, TT}, {T3, hd}, {T3, hd}, D, 1},
    };
#undef FWD
#undef DX
#undef DW
#undef LIN
    int n = sizeof shapes / sizeof shapes[0], calls = B * NH;
    long na = 0, nb = 0, nc = 0;
    for (int i = 0; i < n; i++) {
        const GemmShape *g = &shapes[i];
        long a = extent(g, g->sa, g->ta ? g->K : g->M, g->lda, g->ta ? g->M : g->K, calls, NH);
        long b = extent(g, g->sb, g->tb ? g->N : g->K, g->ldb, g->tb ? g->K : g->N, calls, NH);
        long cc = extent(g, g->sc, g->M, g->ldc, g->N, calls, NH);
        na = a > na ? a : na; nb = b > nb ? b : nb; nc = cc > nc ? cc : nc;
    }
    float *A = xmalloc(na * sizeof(float)), *Bm = xmalloc(nb * sizeof(float)), *C = xcalloc(nc, sizeof(float));
    for (long i = 0; i < na; i++) A[i] = (float)((i * 7919) % 201 - 100) * 0.01f;
    for (long i = 0; i < nb; i++) Bm[i] = (float)((i * 104729) % 199 - 99) * 0.01f;
    printf("GEMMs of one %s training step (batch %d, %d tokens, hidden %d, %d heads), %d threads, best of %d%s:\n",
           name, B, T, H, NH, threads, reps, cpu_clock ? " (thread CPU time)" : "");
    printf("  %-16s %5s %6s %6s %6s %6s %12s %12s %8s\n", "matrix multiply", "op", "M", "N", "K", "calls",
           "fp32 GFLOP/s", "bf16 GFLOP/s", "bf16 x");
    double tot32 = 0, tot16 = 0;
    for (int i = 0; i < n; i++) {
        const GemmShape *g = &shapes[i];
        int k = g->head_loop ? calls : 1;
        double t32 = time_shape(g, ops_cpu.gemm, A, Bm, C, k, NH, reps);
        double t16 = time_shape(g, ops_cpu_bf16.gemm, A, Bm, C, k, NH, reps);
        double flop = 2.0 * g->M * g->N * g->K * k;
        tot32 += t32 * g->per_step;
        tot16 += t16 * g->per_step;
        char op[8];
        snprintf(op, sizeof op, "%c%c", g->ta ? 'T' : 'N', g->tb ? 'T' : 'N');
        char count[16];
        snprintf(count, sizeof count, g->head_loop ? "%dx%d" : "%d", g->per_step, k);
        printf("  %-16s %5s %6d %6d %6d %6s %12.1f %12.1f %7.2fx\n", g->name, op, g->M, g->N, g->K, count,
               flop / t32 / 1e9, flop / t16 / 1e9, t32 / t16);
    }
    printf("  these matrix multiplies per training step: fp32 %.1f ms, bf16 %.1f ms (%.2fx)\n", 1e3 * tot32, 1e3 * tot16,
           tot32 / tot16);
    printf("  (attention rows: one call per image and head, B*heads calls in an OpenMP loop, per block)\n");
    free(A); free(Bm); free(C);
}
