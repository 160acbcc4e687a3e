// bf16 GEMM on AVX512_BF16. VDPBF16PS multiplies 32 bf16 pairs and adds each pair's two products
// into one of 16 fp32 lanes, so both operands are packed with two consecutive k in every 32-bit lane
// (low half k even, high half k odd; K padded to even with zeros), rounding fp32 to bf16 on the way.
//
//   B (the vector operand): panels of NR = 16*NV columns, [pair p][column j], NR lanes per pair.
//   A (the broadcast operand): micro-panels of MR rows, in one of two layouts chosen by how A is stored:
//     op(A) rows contiguous (transA = 0): [row i][pair p], rows KCP pairs apart (a fixed stride, so the
//       kernel addresses every row from one register with a constant displacement);
//     op(A) columns contiguous (transA = 1): [pair p][row i], MR lanes per pair.
//   Micro-kernel: MR x NR of C in MR*NV zmm accumulators; per pair, NV loads of B and MR broadcasts of A.
//   Blocking: K in blocks of at most 2*KCP (B micro-panel and A micro-panel stay in L1), C in tiles of
//   about MCP micro-panels (the packed A block stays in L2) by a range of B panels; B is packed once per
//   K block and shared, each thread packs its own A block. Tiles are split over OpenMP threads.
// Every C element is summed in the same order (K blocks in order, pairs in order) whatever the thread
// count or tiling, so results do not depend on --threads.
#include "ops/cpu/gemm_bf16.h"
#include <immintrin.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

#ifndef BF16_MR
#define BF16_MR 14      // rows of A broadcast per micro-kernel (at most 16)
#endif
#ifndef BF16_NV
#define BF16_NV 2       // zmm vectors of C per row: NR = 16 * NV columns
#endif
#ifndef BF16_KCP
#define BF16_KCP 192    // pairs per K block (a multiple of 16)
#endif
#ifndef BF16_MCP
#define BF16_MCP 12     // micro-panels of A per block
#endif
#define MR BF16_MR
#define NV BF16_NV
#define NR (16 * NV)
#define KCP BF16_KCP
_Static_assert(MR >= 1 && MR <= 16 && KCP % 16 == 0, "bf16 GEMM blocking");

#define TGT __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define TGT_INLINE static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512bf16")))

int gemm_bf16_supported(void) {
    static int cached = -1;
    if (cached < 0)
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512bf16");
    return cached;
}

// ---------------------------------------------------------------- scalar model of the conversion

uint16_t bf16_from_float(float x) {
    union { float f; uint32_t u; } v = {.f = x};
    uint32_t u = v.u;
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);          // zero, denormal
    if ((u & 0x7f800000u) == 0x7f800000u)                                        // inf, NaN
        return (uint16_t)((u >> 16) | ((u & 0x007fffffu) ? 0x0040u : 0));
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);                    // nearest, ties to even
}

float bf16_to_float(uint16_t h) {
    union { uint32_t u; float f; } v = {.u = (uint32_t)h << 16};
    return v.f;
}

// ---------------------------------------------------------------- conversion and packing

TGT_INLINE __mmask16 mask_n(int n) { return n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1) : 0; }

// n floats -> bf16 in order (so each 32-bit lane holds a pair); writes n rounded up to 32, zeros past n.
TGT_INLINE void convert_run(uint16_t *d, const float *s, int n) {
    for (int k = 0; k < n; k += 32) {
        __m512 x0 = _mm512_maskz_loadu_ps(mask_n(n - k), s + k);
        __m512 x1 = _mm512_maskz_loadu_ps(mask_n(n - k - 16), s + k + 16);
        _mm512_storeu_si512(d + k, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
    }
}

// 16 lanes of pairs (x0[t], x1[t]): x0 in the low half.
TGT_INLINE __m512i interleave_pairs(__m512 x0, __m512 x1) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
}

// r[a] (16 lanes) -> r[b] lane a = old r[a] lane b.
TGT_INLINE void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {   // r[4i+j], 128-bit lane L: column 4L+j of rows 4i..4i+3
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int j = 0; j < 4; j++) {
        __m512i u0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88), u1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xdd);
        __m512i w0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88), w1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xdd);
        t[j] = _mm512_shuffle_i32x4(u0, w0, 0x88);
        t[8 + j] = _mm512_shuffle_i32x4(u0, w0, 0xdd);
        t[4 + j] = _mm512_shuffle_i32x4(u1, w1, 0x88);
        t[12 + j] = _mm512_shuffle_i32x4(u1, w1, 0xdd);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

// A block, transA = 0: rows r0 .. r0+rows-1 of A (row-major, k contiguous), nmp micro-panels [i][p].
TGT static void pack_a_rows(const float *A, int lda, int r0, int rows, int nmp, int k0, int kc, uint32_t *dst) {
    int kcp = (kc + 1) / 2;
    for (int i = 0; i < nmp * MR; i++) {
        uint32_t *d = dst + (size_t)i * KCP;   // micro-panel (i / MR) row (i % MR): same as i * KCP
        if (i < rows) convert_run((uint16_t *)d, A + (size_t)(r0 + i) * lda + k0, kc);
        else memset(d, 0, (size_t)kcp * 4);
    }
}

// A block, transA = 1: op(A)(i, k) = A[k * lda + i], nmp micro-panels [p][i].
TGT static void pack_a_cols(const float *A, int lda, int r0, int rows, int nmp, int k0, int kc, uint32_t *dst) {
    int kcp = (kc + 1) / 2;
    for (int m = 0; m < nmp; m++) {
        __mmask16 mv = mask_n(rows - m * MR), ms = mask_n(MR);
        const float *s = A + (size_t)k0 * lda + r0 + m * MR;
        uint32_t *d = dst + (size_t)m * MR * kcp;
        for (int p = 0; p < kcp; p++) {
            __m512 x0 = _mm512_maskz_loadu_ps(mv, s + (size_t)2 * p * lda);
            __m512 x1 = 2 * p + 1 < kc ? _mm512_maskz_loadu_ps(mv, s + (size_t)(2 * p + 1) * lda) : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(d + (size_t)p * MR, ms, interleave_pairs(x0, x1));
        }
    }
}

// One B panel, transB = 0: op(B)(k, j) = B[k * ldb + j], columns j0 .. j0+nr-1.
TGT static void pack_b_rows(const float *B, int ldb, int j0, int nr, int k0, int kc, uint32_t *dst) {
    int kcp = (kc + 1) / 2;
    const float *s = B + (size_t)k0 * ldb + j0;
    for (int p = 0; p < kcp; p++)
        for (int v = 0; v < NV; v++) {
            __mmask16 mv = mask_n(nr - 16 * v);
            __m512 x0 = _mm512_maskz_loadu_ps(mv, s + (size_t)2 * p * ldb + 16 * v);
            __m512 x1 = 2 * p + 1 < kc ? _mm512_maskz_loadu_ps(mv, s + (size_t)(2 * p + 1) * ldb + 16 * v)
                                       : _mm512_setzero_ps();
            _mm512_store_si512(dst + (size_t)p * NR + 16 * v, interleave_pairs(x0, x1));
        }
}

// One B panel, transB = 1: op(B)(k, j) = B[j * ldb + k]; 16 columns x 16 pairs at a time, transposed.
TGT static void pack_b_cols(const float *B, int ldb, int j0, int nr, int k0, int kc, uint32_t *dst) {
    int kcp = (kc + 1) / 2;
    for (int jj = 0; jj < NR; jj += 16)
        for (int p0 = 0; p0 < kcp; p0 += 16) {
            __m512i r[16];
            int k = 2 * p0;
            for (int t = 0; t < 16; t++) {
                if (jj + t >= nr) { r[t] = _mm512_setzero_si512(); continue; }
                const float *s = B + (size_t)(j0 + jj + t) * ldb + k0 + k;
                __m512 x0 = _mm512_maskz_loadu_ps(mask_n(kc - k), s);
                __m512 x1 = _mm512_maskz_loadu_ps(mask_n(kc - k - 16), s + 16);
                r[t] = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
            }
            transpose16(r);
            for (int q = 0; q < 16 && p0 + q < kcp; q++) _mm512_store_si512(dst + (size_t)(p0 + q) * NR + jj, r[q]);
        }
}

// ---------------------------------------------------------------- micro-kernel

// C[mr, nr] = alpha * A B + beta * C over kcp pairs (beta == 0: C is not read); A pair (i, p) at
// a[p * ps + i * is], B pair p at b[p * NR .. p * NR + NR).
TGT_INLINE void kernel(int kcp, const uint32_t *a, const int ps, const int is, const uint32_t *b, float *c, int ldc,
                       int mr, int nr, float alpha, float beta) {
    __m512 acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    for (int p = 0; p < kcp; p++) {
        __m512bh bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) bv[v] = (__m512bh)_mm512_load_si512(b + (size_t)p * NR + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[(size_t)p * ps + (size_t)i * is]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 mk[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) mk[v] = mask_n(nr - 16 * v);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        float *cr = c + (size_t)i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m512 r = _mm512_mul_ps(va, acc[i][v]);
            if (beta != 0) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mk[v], cr + 16 * v), r);
            _mm512_mask_storeu_ps(cr + 16 * v, mk[v], r);
        }
    }
}

TGT __attribute__((noinline)) static void kernel_rows(int kcp, const uint32_t *a, const uint32_t *b, float *c,
                                                       int ldc, int mr, int nr, float alpha, float beta) {
    kernel(kcp, a, 1, KCP, b, c, ldc, mr, nr, alpha, beta);
}

TGT __attribute__((noinline)) static void kernel_pairs(int kcp, const uint32_t *a, const uint32_t *b, float *c,
                                                        int ldc, int mr, int nr, float alpha, float beta) {
    kernel(kcp, a, MR, 1, b, c, ldc, mr, nr, alpha, beta);
}

// ---------------------------------------------------------------- driver

typedef struct { void *p; size_t cap; } Buf;
static _Thread_local Buf tls_a, tls_b;   // per-thread packing buffers, grown as needed, kept

static void *buf_get(Buf *b, size_t bytes) {
    if (bytes > b->cap) {
        free(b->p);
        b->p = NULL;
        if (posix_memalign(&b->p, 64, bytes) != 0) ddm_fatal("out of memory (bf16 GEMM packing, %zu bytes)", bytes);
        b->cap = bytes;
    }
    return b->p;
}

static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0.0f : beta * C[(size_t)i * ldc + j];
}

typedef struct {
    int transA, transB, M, N, K;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
    int kcb, npan, nmp, nib, njb;   // K block, B panels, A micro-panels, tiles: nib x njb
    uint32_t *bp;
} Job;

static void pack_b_panel(const Job *j, int jp, int k0, int kc) {
    int nr = j->N - jp * NR < NR ? j->N - jp * NR : NR;
    uint32_t *d = j->bp + (size_t)jp * NR * ((kc + 1) / 2);
    if (j->transB) pack_b_cols(j->B, j->ldb, jp * NR, nr, k0, kc, d);
    else pack_b_rows(j->B, j->ldb, jp * NR, nr, k0, kc, d);
}

// Tile t of the K block at k0: micro-panels m0..m1-1 of A (packed into ap unless *packed == its index)
// by B panels p0..p1-1.
static void run_tile(const Job *j, int t, int k0, int kc, uint32_t *ap, int *packed) {
    int kcp = (kc + 1) / 2, ib = t / j->njb, jb = t % j->njb;
    float beta = k0 == 0 ? j->beta : 1.0f;
    int m0 = (int)((long)ib * j->nmp / j->nib), m1 = (int)((long)(ib + 1) * j->nmp / j->nib);
    int p0 = (int)((long)jb * j->npan / j->njb), p1 = (int)((long)(jb + 1) * j->npan / j->njb);
    if (*packed != ib) {
        int r0 = m0 * MR, rows = j->M - r0;
        if (j->transA) pack_a_cols(j->A, j->lda, r0, rows, m1 - m0, k0, kc, ap);
        else pack_a_rows(j->A, j->lda, r0, rows, m1 - m0, k0, kc, ap);
        *packed = ib;
    }
    size_t a_step = (size_t)MR * (j->transA ? kcp : KCP);
    for (int jp = p0; jp < p1; jp++) {
        const uint32_t *b = j->bp + (size_t)jp * NR * kcp;
        int nr = j->N - jp * NR < NR ? j->N - jp * NR : NR;
        for (int mp = m0; mp < m1; mp++) {
            int mr = j->M - mp * MR < MR ? j->M - mp * MR : MR;
            float *c = j->C + (size_t)mp * MR * j->ldc + (size_t)jp * NR;
            const uint32_t *a = ap + (mp - m0) * a_step;
            if (j->transA) kernel_pairs(kcp, a, b, c, j->ldc, mr, nr, j->alpha, beta);
            else kernel_rows(kcp, a, b, c, j->ldc, mr, nr, j->alpha, beta);
        }
    }
}

// The same loops twice: serial (no OpenMP construct, so it is safe inside someone else's parallel
// region) and shared over a team of its own.
static void run_serial(const Job *j, size_t a_bytes) {
    uint32_t *ap = buf_get(&tls_a, a_bytes);
    for (int k0 = 0; k0 < j->K; k0 += j->kcb) {
        int kc = j->K - k0 < j->kcb ? j->K - k0 : j->kcb, packed = -1;
        for (int jp = 0; jp < j->npan; jp++) pack_b_panel(j, jp, k0, kc);
        for (int t = 0; t < j->nib * j->njb; t++) run_tile(j, t, k0, kc, ap, &packed);
    }
}

static void run_parallel(const Job *j, size_t a_bytes, int nth) {
#pragma omp parallel num_threads(nth)
    {
        uint32_t *ap = buf_get(&tls_a, a_bytes);
        for (int k0 = 0; k0 < j->K; k0 += j->kcb) {
            int kc = j->K - k0 < j->kcb ? j->K - k0 : j->kcb, packed = -1;
#pragma omp for schedule(static)
            for (int jp = 0; jp < j->npan; jp++) pack_b_panel(j, jp, k0, kc);
#pragma omp for schedule(static)
            for (int t = 0; t < j->nib * j->njb; t++) run_tile(j, t, k0, kc, ap, &packed);
        }
    }
}

static int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

void gemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0) { scale_c(M, N, beta, C, ldc); return; }
    if (!gemm_bf16_supported()) DDM_BUG("gemm_bf16 called on a CPU without AVX512_BF16");
    Job j = {transA, transB, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C, 0, 0, 0, 0, 1, NULL};
    int nkb = ceil_div(K, 2 * KCP);
    j.kcb = (ceil_div(K, nkb) + 1) & ~1;
    j.npan = ceil_div(N, NR);
    j.nmp = ceil_div(M, MR);
    int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
    if ((double)M * N * K < 1e6) nth = 1;   // not worth waking the threads
    j.nib = ceil_div(j.nmp, BF16_MCP);
    if (nth > 1) {
        // enough tiles to share evenly: round the row blocks up to a multiple of the threads, or split N too
        if (j.nib >= nth) j.nib = ceil_div(j.nib, nth) * nth;
        if (j.nib > j.nmp) j.nib = j.nmp;
        if (j.nib < 2 * nth) {
            j.njb = ceil_div(2 * nth, j.nib);
            while (j.njb < j.npan && (j.nib * j.njb) % nth) j.njb++;
            if (j.njb > j.npan) j.njb = j.npan;
        }
    }
    j.bp = buf_get(&tls_b, (size_t)j.npan * NR * (j.kcb / 2) * 4);
    int max_mp = ceil_div(j.nmp, j.nib);
    size_t a_bytes = (size_t)max_mp * MR * (transA ? (size_t)j.kcb / 2 : KCP) * 4;
    if (nth > 1) run_parallel(&j, a_bytes, nth);
    else run_serial(&j, a_bytes);
}

TGT static void round_chunk(uint16_t *dst, const float *src, int n) {
    uint16_t tmp[32];
    convert_run(tmp, src, n);
    memcpy(dst, tmp, (size_t)n * 2);
}

void bf16_round_vec(uint16_t *dst, const float *src, long n) {
    if (!gemm_bf16_supported()) DDM_BUG("bf16_round_vec called on a CPU without AVX512_BF16");
    for (long i = 0; i < n; i += 32) round_chunk(dst + i, src + i, n - i < 32 ? (int)(n - i) : 32);
}
