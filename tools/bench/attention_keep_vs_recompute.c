// One-off measurement behind the CPU attention's design (docs/performance.md): the flash-shaped contract lets
// the CPU backend keep only the row log-sum-exp and recompute the probabilities in backward; this times that
// against the earlier kernel, which kept the [B, NH, T, T] probabilities, on the same shapes, by the thread's CPU
// time (one thread: the figure does not count time lost to other processes on a shared machine). It calls the
// recompute kernel of the library at commit 757702f (the library now keeps the probabilities): build it there.
//   make tools/bench/attention_keep_vs_recompute && ./tools/bench/attention_keep_vs_recompute
// (built like a test: cc -O3 -march=native -fopenmp -Isrc ... build/libddm.a -lopenblas ...)
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ops/cpu/cpu_kernels.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// The earlier kernels, probabilities kept (the same operations as before the device-boundary change).
static void keep_fwd(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    int hd = C / NH;
    float sc = (float)(1.0 / sqrt((double)hd));
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *q = qkv + (long)b * T * 3 * C + h * hd, *k = q + C, *v = q + 2 * C;
        float *p = att + (long)bh * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, sc, q, 3 * C, k, 3 * C, 0, p, T);
        for (int i = 0; i < T; i++) {
            float *row = p + (long)i * T, mx = row[0];
            for (int j = 1; j < T; j++) mx = row[j] > mx ? row[j] : mx;
            double s = 0;
            for (int j = 0; j < T; j++) { row[j] = (float)exp((double)(row[j] - mx)); s += row[j]; }
            float inv = (float)(1.0 / s);
            for (int j = 0; j < T; j++) row[j] *= inv;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1, p, T, v, 3 * C, 0, out + (long)b * T * C + h * hd, C);
    }
}

static void keep_bwd(float *dqkv, float *dp, const float *dout, const float *qkv, const float *att, int B, int T, int C, int NH) {
    int hd = C / NH;
    float sc = (float)(1.0 / sqrt((double)hd));
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        long base = (long)b * T * 3 * C + h * hd;
        const float *q = qkv + base, *k = q + C, *v = q + 2 * C, *p = att + (long)bh * T * T, *dy = dout + (long)b * T * C + h * hd;
        float *dq = dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1, dy, C, v, 3 * C, 0, dp, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1, p, T, dy, C, 0, dv, 3 * C);
        for (int i = 0; i < T; i++) {
            const float *pr = p + (long)i * T;
            float *dr = dp + (long)i * T;
            double s = 0;
            for (int j = 0; j < T; j++) s += (double)pr[j] * dr[j];
            for (int j = 0; j < T; j++) dr[j] = pr[j] * (float)(dr[j] - s);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, sc, dp, T, k, 3 * C, 0, dq, 3 * C);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, sc, dp, T, q, 3 * C, 0, dk, 3 * C);
    }
}

int main(void) {
    openblas_set_num_threads(1);
    const struct { const char *name; int B, T, C, NH; } shapes[] = {
        {"SiT-S/4 on 28x28 (T 49), batch 64", 64, 49, 384, 6}, {"demo 6x192 patch 4 (T 49), batch 32", 32, 49, 192, 3},
        {"patch 2 on 28x28 (T 196), batch 16", 16, 196, 192, 3}};
    printf("%-40s %12s %12s %10s %14s\n", "shape", "keep ms", "recompute ms", "ratio", "kept MB / block");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s].B, T = shapes[s].T, C = shapes[s].C, NH = shapes[s].NH;
        size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, np = (size_t)B * NH * T * T;
        float *qkv = malloc(nq * 4), *out = malloc(no * 4), *dout = malloc(no * 4), *dqkv = malloc(nq * 4);
        float *att = malloc(np * 4), *dp = malloc((size_t)T * T * 4), *lse = malloc((size_t)B * NH * T * 4);
        for (size_t i = 0; i < nq; i++) qkv[i] = (float)sin(0.37 * i);
        for (size_t i = 0; i < no; i++) dout[i] = (float)cos(0.11 * i);
        double best_keep = 1e9, best_rec = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = cpu_now();
            keep_fwd(out, att, qkv, B, T, C, NH);
            keep_bwd(dqkv, dp, dout, qkv, att, B, T, C, NH);
            double t1 = cpu_now();
            cpu_attention_fwd(out, lse, qkv, B, T, C, NH);
            cpu_attention_bwd(dqkv, dout, qkv, out, lse, B, T, C, NH);
            double t2 = cpu_now();
            if (t1 - t0 < best_keep) best_keep = t1 - t0;
            if (t2 - t1 < best_rec) best_rec = t2 - t1;
        }
        printf("%-40s %12.2f %12.2f %9.2fx %14.1f\n", shapes[s].name, 1e3 * best_keep, 1e3 * best_rec, best_rec / best_keep,
               np * 4 / 1e6);
        free(qkv); free(out); free(dout); free(dqkv); free(att); free(dp); free(lse);
    }
    return 0;
}
