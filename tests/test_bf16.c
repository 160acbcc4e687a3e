// The bf16 GEMM (src/ops/cpu/gemm_bf16.c) and the bf16 precision option: exact rounding of
// hand-picked values, the GEMM against a float64 reference for every transpose combination, odd sizes,
// alpha/beta and padded leading dimensions, thread-count invariance, and a short training run whose
// loss follows the fp32 run's. Skipped (with the reason) on CPUs without AVX512_BF16. No timing here.
#include <omp.h>
#include <stdint.h>
#include "loss/dispersive.h"
#include "nn/dit.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/ops.h"
#include "rng.h"
#include "test.h"
#include "train/step.h"

static Rng g_rng;
static const double U24 = 1.0 / (1 << 24);   // fp32 unit roundoff
static const double U8 = 1.0 / (1 << 8);     // bf16 unit roundoff (8 significant bits)

static float from_bits(uint32_t u) { union { uint32_t u; float f; } v = {.u = u}; return v.f; }
static uint32_t to_bits(float f) { union { float f; uint32_t u; } v = {.f = f}; return v.u; }

// ---------------------------------------------------------------- rounding

static void test_rounding(void) {
    static const struct { uint32_t in; uint16_t want; const char *what; } cases[] = {
        {0x3f800000, 0x3f80, "1"},
        {0x3f808000, 0x3f80, "1 + 2^-8: tie, to the even 1"},
        {0x3f818000, 0x3f82, "1 + 3*2^-8: tie, to the even 1 + 2^-6"},
        {0x3f808001, 0x3f81, "just above a tie rounds up"},
        {0x3f807fff, 0x3f80, "just below a tie rounds down"},
        {0xbf808000, 0xbf80, "-(1 + 2^-8): tie, to the even -1"},
        {0xbf818000, 0xbf82, "-(1 + 3*2^-8): tie, to the even"},
        {0x3fffffff, 0x4000, "carry into the exponent"},
        {0x7f7fffff, 0x7f80, "FLT_MAX rounds to inf"},
        {0x7f7f7fff, 0x7f7f, "the largest value that stays finite"},
        {0x7f800000, 0x7f80, "+inf"},
        {0xff800000, 0xff80, "-inf"},
        {0x7fc00000, 0x7fc0, "quiet NaN"},
        {0xffc12345, 0xffc1, "negative NaN keeps sign and top payload"},
        {0x7f800001, 0x7fc0, "signalling NaN with only low payload stays NaN (quietened)"},
        {0x7fffffff, 0x7fff, "NaN whose rounding would carry stays NaN"},
        {0x00800000, 0x0080, "smallest normal"},
        {0x007fffff, 0x0000, "denormal becomes +0 (as the instruction)"},
        {0x80000001, 0x8000, "negative denormal becomes -0"},
        {0x00000000, 0x0000, "+0"},
        {0x80000000, 0x8000, "-0"},
    };
    int n = sizeof cases / sizeof cases[0];
    float in[32];
    uint16_t hw[32];
    for (int i = 0; i < n; i++) in[i] = from_bits(cases[i].in);
    bf16_round_vec(hw, in, n);
    for (int i = 0; i < n; i++) {
        uint16_t sw = bf16_from_float(in[i]);
        CHECK(sw == cases[i].want && hw[i] == cases[i].want, "%s: 0x%08x -> model 0x%04x, instruction 0x%04x, want 0x%04x",
              cases[i].what, cases[i].in, sw, hw[i], cases[i].want);
    }
    // the portable model is the instruction, on any bit pattern
    enum { R = 1 << 16 };
    float *x = malloc(R * sizeof(float));
    uint16_t *h = malloc(R * sizeof(uint16_t));
    long bad = 0;
    for (int rep = 0; rep < 16; rep++) {
        for (int i = 0; i < R; i++) x[i] = from_bits((uint32_t)rng_u64(&g_rng));
        bf16_round_vec(h, x, R - rep);   // odd lengths too
        for (int i = 0; i < R - rep; i++) bad += h[i] != bf16_from_float(x[i]);
    }
    CHECK(bad == 0, "model and instruction differ on %ld of 1M random bit patterns", bad);
    CHECK(bf16_to_float(0x3f81) == 1.0078125f && isnan(bf16_to_float(0x7fc0)), "bf16_to_float");
    free(x);
    free(h);
}

// The GEMM's packing rounds both operands exactly like the model: op(A) = v (M x 1) times op(B) = 1
// gives bf16(v), and the other way round, through all four packing routines.
static void test_rounding_through_gemm(void) {
    enum { M = 21 };
    float v[M], one[M], c[M * M];
    for (int i = 0; i < M; i++) {
        uint32_t bits[] = {0x3f808000, 0x3f818000, 0x3f808001, 0xbf808000, 0x7f7fffff, 0x40490fdb, 0x3eaaaaab};
        v[i] = from_bits(bits[i % 7]) * (i < 7 ? 1.0f : i < 14 ? -0.5f : 1e-3f);
        one[i] = 1.0f;
    }
    int ok = 1;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_bf16(ta, tb, M, 1, 1, 1.0f, v, ta ? M : 1, one, 1, 0.0f, c, 1);   // A = v: column of A
            for (int i = 0; i < M; i++) ok &= to_bits(c[i]) == (uint32_t)bf16_from_float(v[i]) << 16;
            gemm_bf16(ta, tb, 1, M, 1, 1.0f, one, 1, v, tb ? 1 : M, 0.0f, c, M);   // B = v: row of B
            for (int i = 0; i < M; i++) ok &= to_bits(c[i]) == (uint32_t)bf16_from_float(v[i]) << 16;
        }
    CHECK(ok, "the GEMM's operands are rounded to nearest even (ties, overflow to inf)");
}

// ---------------------------------------------------------------- GEMM against float64

typedef struct { double rounded, exact; } Errs;   // worst error / bound ratios

// C0 is C before the call; checks the columns between N and ldc are untouched.
static Errs gemm_errors(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                        int ldb, float beta, const float *C0, const float *C, int ldc, int *pad_ok) {
    Errs e = {0, 0};
    // op(A), op(B) in plain row-major, exact and rounded to bf16 by the model
    double *a0 = malloc(sizeof(double) * M * K), *ar0 = malloc(sizeof(double) * M * K);
    double *b0 = malloc(sizeof(double) * K * N), *br0 = malloc(sizeof(double) * K * N);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) {
            float a = ta ? A[(long)k * lda + i] : A[(long)i * lda + k];
            a0[(long)i * K + k] = a;
            ar0[(long)i * K + k] = bf16_to_float(bf16_from_float(a));
        }
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) {
            float b = tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
            b0[(long)k * N + j] = b;
            br0[(long)k * N + j] = bf16_to_float(bf16_from_float(b));
        }
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, sr = 0, sa = 0, sra = 0;
            for (int k = 0; k < K; k++) {
                double a = a0[(long)i * K + k], b = b0[(long)k * N + j];
                double ar = ar0[(long)i * K + k], br = br0[(long)k * N + j];
                s += a * b;
                sa += fabs(a * b);
                sr += ar * br;
                sra += fabs(ar * br);
            }
            double c0 = beta == 0 ? 0 : (double)beta * C0[(long)i * ldc + j], got = C[(long)i * ldc + j];
            // fp32 summation of K pair products, the alpha scaling and the beta term: (K + 8) u24 slack
            double slack = (K + 8) * U24 * (fabs(alpha) * sra + fabs(c0)) + 1e-37;
            double r = fabs(got - (alpha * sr + c0)) / slack;
            // each input rounded to bf16 (relative 2^-8): products off by at most (2 u8 + u8^2) |a b|
            double bound = (2 * U8 + U8 * U8) * fabs(alpha) * sa + (K + 8) * U24 * (fabs(alpha) * sa + fabs(c0)) + 1e-37;
            double x = fabs(got - (alpha * s + c0)) / bound;
            if (!(r <= e.rounded)) e.rounded = r;
            if (!(x <= e.exact)) e.exact = x;
        }
        for (int j = N; j < ldc; j++) *pad_ok &= to_bits(C[(long)i * ldc + j]) == to_bits(C0[(long)i * ldc + j]);
    }
    free(a0); free(ar0); free(b0); free(br0);
    return e;
}

static void fill(float *x, long n, float scale) { for (long i = 0; i < n; i++) x[i] = scale * (2 * rng_uniform(&g_rng) - 1); }

// One call; returns 1 if within both bounds.
static int check_gemm(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *C0 = malloc(nc * 4);
    fill(A, na, 1.0f);
    fill(B, nb, 3.0f);
    fill(C0, nc, 2.0f);
    if (beta == 0) for (long i = 0; i < nc; i++) if (i % ldc < N) C0[i] = NAN;   // beta == 0 must not read C
    memcpy(C, C0, nc * 4);
    gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    int pad_ok = 1;
    Errs e = gemm_errors(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, C, ldc, &pad_ok);
    int ok = e.rounded <= 1 && e.exact <= 1 && pad_ok;
    if (!ok)
        fprintf(stderr, "  gemm %c%c M %d N %d K %d alpha %g beta %g pad %d: error/bound %.3g (bf16 inputs), %.3g "
                "(fp32 inputs)%s\n", "NT"[ta], "NT"[tb], M, N, K, alpha, beta, pad, e.rounded, e.exact,
                pad_ok ? "" : ", wrote past N");
    free(A); free(B); free(C); free(C0);
    return ok;
}

static void test_gemm_small(void) {
    static const int mn[] = {1, 7, 33, 65, 127}, ks[] = {1, 2, 7, 33, 64, 65, 127};
    static const float ab[][2] = {{1, 0}, {-0.75f, 1}, {2.5f, -0.5f}};
    int fails = 0, n = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int a = 0; a < 5; a++)
                for (int b = 0; b < 5; b++)
                    for (int k = 0; k < 7; k++, n++) {
                        const float *s = ab[(a + b + k) % 3];
                        fails += !check_gemm(ta, tb, mn[a], mn[b], ks[k], s[0], s[1], (a + 2 * b + k) % 4);
                    }
    CHECK(fails == 0, "%d of %d small GEMMs outside the bounds", fails, n);
}

// K above one block (several K blocks, the first applying beta), several tiles over two threads.
static void test_gemm_blocked(void) {
    omp_set_num_threads(2);
    int ok = 1;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            ok &= check_gemm(ta, tb, 151, 101, 421, 1.0f, 0.0f, 3);
            ok &= check_gemm(ta, tb, 64, 300, 390, 0.5f, 2.0f, 0);
        }
    CHECK(ok, "blocked GEMMs (K > one block, several tiles, two threads) within the bounds");
    CHECK(check_gemm(0, 0, 5, 6, 0, 1.0f, 0.5f, 1) && check_gemm(1, 1, 5, 6, 4, 0.0f, 0.0f, 1),
          "K = 0 and alpha = 0 give beta * C");
}

// The summation order does not depend on the thread count, nor on being called inside a parallel region.
static void test_gemm_threads(void) {
    enum { M = 250, N = 190, K = 530 };
    float *A = malloc(M * K * 4), *B = malloc(K * N * 4), *C1 = malloc(M * N * 4), *C2 = malloc(M * N * 4);
    float *Cn = malloc(2L * M * N * 4);
    fill(A, M * K, 1);
    fill(B, K * N, 1);
    int same = 1, nested = 1;
    for (int ta = 0; ta < 2; ta++) {
        omp_set_num_threads(1);
        gemm_bf16(ta, 1, M, N, K, 1.0f, A, ta ? M : K, B, K, 0.0f, C1, N);
        omp_set_num_threads(2);
        gemm_bf16(ta, 1, M, N, K, 1.0f, A, ta ? M : K, B, K, 0.0f, C2, N);
        same &= memcmp(C1, C2, M * N * 4) == 0;
#pragma omp parallel for num_threads(2)
        for (int r = 0; r < 2; r++) gemm_bf16(ta, 1, M, N, K, 1.0f, A, ta ? M : K, B, K, 0.0f, Cn + (long)r * M * N, N);
        nested &= memcmp(C1, Cn, M * N * 4) == 0 && memcmp(C1, Cn + M * N, M * N * 4) == 0;
    }
    CHECK(same, "1 and 2 threads give identical results");
    CHECK(nested, "calls inside a parallel region give the same results");
    free(A); free(B); free(C1); free(C2); free(Cn);
}

// ---------------------------------------------------------------- the model in bf16

static double rel_l2(const float *a, const float *b, long n) {
    double d = 0, s = 0;
    for (long i = 0; i < n; i++) { d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); s += (double)b[i] * b[i]; }
    return sqrt(d / (s + 1e-300));
}

// One forward and backward with random (not adaLN-zero) weights: every matrix multiply matters.
static void test_model_forward_backward(void) {
    DitConfig c = {.depth = 2, .hidden = 64, .heads = 4, .patch = 2, .in_channels = 1, .height = 8, .width = 8,
                   .num_classes = 3, .learn_sigma = 0, .mlp_ratio = 4};
    enum { B = 6, n = 64 };
    Dit *m32 = dit_create(&c, &ops_cpu), *m16 = dit_create(&c, &ops_cpu_bf16);
    Rng r;
    rng_init(&r, 5, 5);
    rng_normal_fill(&r, m32->params, (long)m32->total);
    for (size_t i = 0; i < m32->total; i++) m32->params[i] *= 0.1f;
    memcpy(m16->params, m32->params, m32->total * sizeof(float));
    float x[B * n], t[B], o32[B * n], o16[B * n], dout[B * n];
    int y[B];
    rng_normal_fill(&r, x, B * n);
    rng_normal_fill(&r, dout, B * n);
    for (int b = 0; b < B; b++) { t[b] = rng_uniform(&r); y[b] = b % 4; }
    Dit *ms[2] = {m32, m16};
    float *os[2] = {o32, o16};
    for (int k = 0; k < 2; k++) {
        dit_zero_grad(ms[k]);
        dit_forward(ms[k], os[k], x, t, y, B);
        dit_backward(ms[k], dout, NULL, NULL);
    }
    double eo = rel_l2(o16, o32, B * n), eg = rel_l2(m16->grads, m32->grads, (long)m32->total);
    // bf16 keeps 8 significant bits (relative 2^-8 = 0.4% per input); through two blocks the output and
    // gradients stay within a few times that in the L2 sense
    if (getenv("SHOW")) printf("forward/backward rel. L2: output %.5f, gradients %.5f\n", eo, eg);
    CHECK(eo < 0.02 && eg < 0.05, "bf16 vs fp32: output rel. L2 %.4f (< 0.02), gradients %.4f (< 0.05)", eo, eg);
    CHECK(eo > 0, "the bf16 table really computes in bf16 (output differs from fp32)");
    dit_free(m32);
    dit_free(m16);
}

// A tiny SiT (with Dispersive Loss) trained for a few steps from the same init and batches in fp32 and
// bf16; the diffusion part of the loss per step (the dispersive part is negative and crosses zero).
static void train_losses(const Ops *ops, float *loss, int steps) {
    DitConfig c = {.depth = 2, .hidden = 64, .heads = 2, .patch = 2, .in_channels = 1, .height = 8, .width = 8,
                   .num_classes = 4, .learn_sigma = 0, .mlp_ratio = 4};
    enum { B = 16, n = 64 };
    Dit *m = dit_create(&c, ops);
    dit_init(m, 3);
    Objective obj;
    objective_init(&obj, OBJ_SIT_LINEAR);
    int block = 0;
    DispSetup d;
    disp_setup_init(&d, m, DISP_INFONCE_L2, 0.5f, 0.5f, 1.0f, &block, 1, B);
    OptimState os;
    optim_init(&os, m);
    StepBatch sb;
    step_batch_init(&sb, m, B);
    objective_bind(&obj, m->ops, B);
    Rng r;
    rng_init(&r, 11, 0);
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {   // four classes of smooth patterns
            int y = sb.h_y[b] = rng_int(&r, 4);
            sb.h_t[b] = rng_uniform(&r);
            for (int i = 0; i < n; i++) sb.h_x[b * n + i] = 0.8f * sinf((float)(y + 1) * (i % 8) * 0.4f + (i / 8) * 0.3f * y);
        }
        rng_normal_fill(&r, sb.h_noise, B * n);
        step_upload(&sb, m, B);
        LossParts lp = step_loss_and_grads(m, &obj, &d, &sb, B, NULL);
        loss[s] = lp.diff;
        optim_clip(m, 1.0f);
        optim_adamw(m, &os, s, 1e-3f, 0.9f, 0.999f, 1e-8f, 0);
        optim_ema(m, &os, 0.99f);
    }
    optim_free(&os, m);
    disp_setup_free(&d, m);
    step_batch_free(&sb);
    objective_unbind(&obj);
    dit_free(m);
}

static void test_training(void) {
    enum { S = 40 };
    float l32[S], l16[S];
    train_losses(&ops_cpu, l32, S);
    train_losses(&ops_cpu_bf16, l16, S);
    double worst = 0, tail32 = 0, tail16 = 0;
    if (getenv("SHOW")) for (int s = 0; s < S; s++) printf("%d %.5f %.5f\n", s, l32[s], l16[s]);
    for (int s = 0; s < S; s++) {
        double d = fabs(l16[s] - l32[s]) / fabs(l32[s]);
        if (!(d <= worst)) worst = d;
        if (s >= S - 10) { tail32 += l32[s] / 10; tail16 += l16[s] / 10; }
    }
    // tolerance: the diffusion loss within 1% of the fp32 run's at every step (0.12% seen), the mean of
    // the last 10 steps within 0.5%
    CHECK(worst < 0.01, "bf16 loss within 1%% of fp32 at every step: worst %.4f", worst);
    CHECK(fabs(tail16 - tail32) < 0.005 * fabs(tail32), "last 10 steps: bf16 %.5f vs fp32 %.5f (0.5%%)", tail16,
          tail32);
    CHECK(tail32 < l32[0] && tail16 < l16[0], "both runs learn: %.4f -> %.4f (fp32), %.4f -> %.4f (bf16)", l32[0],
          tail32, l16[0], tail16);
}

static void test_precision_names(void) {
    const char *err;
    CHECK(ops_select("cpu", "fp32", &err) == &ops_cpu && !err, "fp32 -> ops_cpu");
    CHECK(ops_select("cpu", "bf16", &err) == &ops_cpu_bf16 && !err, "bf16 -> ops_cpu_bf16");
    CHECK(ops_select("cpu", "fp16", &err) == NULL && err && strstr(err, "--precision fp16: expected fp32, bf16 or auto"),
          "unknown precision refused");
    const Ops *iso = ops_select("cpu-isolated", "bf16", &err);
    CHECK(iso && !strcmp(iso->device, "cpu-isolated") && !strcmp(iso->precision, "bf16"), "cpu-isolated at bf16");
}

int main(void) {
    rng_init(&g_rng, 2024, 16);
    if (!gemm_bf16_supported()) {
        const char *err;
        CHECK(ops_select("cpu", "bf16", &err) == NULL && err, "bf16 refused without AVX512_BF16");
        printf("test_bf16: skipped: this CPU has no AVX512_BF16 (avx512_bf16 in /proc/cpuinfo)\n");
        TEST_MAIN_END();
    }
    test_rounding();
    test_rounding_through_gemm();
    test_gemm_small();
    test_gemm_blocked();
    test_gemm_threads();
    test_precision_names();
    // the model tests on one thread: tiny ops, and many OpenMP barriers are slow on a busy machine
    omp_set_num_threads(1);
    test_model_forward_backward();
    test_training();
    TEST_MAIN_END();
}
