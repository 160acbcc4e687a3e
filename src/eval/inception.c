// Inception-v3 feature extractor (inception.h): torchvision's layer graph up to the global average
// pool, with pytorch-fid's FID variants of the A / C / E blocks, on channels-last activations.
#include "eval/inception.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "io/safetensors.h"
#include "eval/cnn_kernels.h"

#define BN_EPS 1e-3
#define INCEPTION_CONVS 94

// BasicConv2d at its fixed place in the network (input h x w with cin channels, output ho x wo x cout).
typedef struct {
    int cin, cout, kh, kw, stride, ph, pw;
    int h, w, ho, wo;
    float *wp;    // [cout, kh*kw*cin], (ky, kx, ci) order, times the BatchNorm scale gamma / sqrt(var + eps)
    float *shift; // [cout]: beta - running_mean * scale
} IConv;

typedef struct { IConv b1, b5_1, b5_2, b3_1, b3_2, b3_3, pool; } BlockA;          // Mixed_5b/5c/5d
typedef struct { IConv b3, b3d_1, b3d_2, b3d_3; } BlockB;                          // Mixed_6a
typedef struct { IConv b1, b7_1, b7_2, b7_3, b7d_1, b7d_2, b7d_3, b7d_4, b7d_5, pool; } BlockC; // Mixed_6b..6e
typedef struct { IConv b3_1, b3_2, b7_1, b7_2, b7_3, b7_4; } BlockD;                // Mixed_7a
typedef struct { IConv b1, b3_1, b3_2a, b3_2b, b3d_1, b3d_2, b3d_3a, b3d_3b, pool; } BlockE; // Mixed_7b/7c

struct Inception {
    InceptionFlavour flavour;
    IConv stem[5]; // Conv2d_1a_3x3, 2a, 2b, (max pool), 3b_1x1, 4a_3x3, (max pool)
    BlockA a[3];
    BlockB b;
    BlockC c[4];
    BlockD d;
    BlockE e[2];
    long act_max; // floats of the largest activation (block inputs and outputs)
    long tmp_max; // of the largest activation inside a block (branch intermediates, pooled inputs)
    long col_max; // of the largest im2col matrix
    int n_convs;
    IConv *convs[INCEPTION_CONVS]; // every convolution above, in load order
};

int inception_flavour_parse(const char *s) {
    if (!strcmp(s, "fid")) return INCEPTION_FID;
    if (!strcmp(s, "torchvision")) return INCEPTION_TORCHVISION;
    return -1;
}

const char *inception_flavour_name(InceptionFlavour f) { return f == INCEPTION_FID ? "fid" : "torchvision"; }

// ---------------------------------------------------------------- loading
typedef struct { const StFile *f; Inception *m; int in_block; } Loader;

static long lmax(long a, long b) { return a > b ? a : b; }

static void load_conv(Loader *L, IConv *c, const char *prefix, const char *name, int cin, int cout, int kh, int kw,
                      int stride, int ph, int pw, int h, int w) {
    char nm[128];
    *c = (IConv){.cin = cin, .cout = cout, .kh = kh, .kw = kw, .stride = stride, .ph = ph, .pw = pw, .h = h, .w = w};
    c->ho = conv_out_size(h, kh, stride, ph);
    c->wo = conv_out_size(w, kw, stride, pw);
    int64_t ws[4] = {cout, cin, kh, kw}, vs[1] = {cout};
    snprintf(nm, sizeof nm, "%s%s.conv.weight", prefix, name);
    const float *wt = st_get_f32(L->f, nm, 4, ws);
    const float *bn[4];
    const char *bn_names[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(nm, sizeof nm, "%s%s.bn.%s", prefix, name, bn_names[i]);
        bn[i] = st_get_f32(L->f, nm, 1, vs);
    }
    long kk = (long)kh * kw, per = kk * cin;
    c->wp = xmalloc((size_t)cout * per * sizeof(float));
    c->shift = xmalloc((size_t)cout * sizeof(float));
    conv2d_pack_weight_f32(c->wp, wt, cout, cin, (int)kk);
    for (int o = 0; o < cout; o++) {
        double s = bn[0][o] / sqrt((double)bn[3][o] + BN_EPS);
        if (!isfinite(s) || !isfinite(bn[1][o] - bn[2][o] * s))
            ddm_fatal("%s: %s%s.bn: non-finite BatchNorm scale or shift at channel %d (running_var %g)", L->f->path,
                      prefix, name, o, bn[3][o]);
        for (long k = 0; k < per; k++) c->wp[o * per + k] = (float)(c->wp[o * per + k] * s);
        c->shift[o] = (float)(bn[1][o] - bn[2][o] * s);
    }
    Inception *m = L->m;
    DDM_ASSERT(m->n_convs < INCEPTION_CONVS);
    m->convs[m->n_convs++] = c;
    long in = (long)h * w * cin, out = (long)c->ho * c->wo * cout;
    m->act_max = lmax(m->act_max, lmax(in, out));
    if (L->in_block) m->tmp_max = lmax(m->tmp_max, lmax(in, out));
    if (kh != 1 || kw != 1 || stride != 1 || ph || pw) m->col_max = lmax(m->col_max, (long)c->ho * c->wo * per);
}

static void load_a(Loader *L, BlockA *b, const char *p, int cin, int pool_features, int s) {
    load_conv(L, &b->b1, p, "branch1x1", cin, 64, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b5_1, p, "branch5x5_1", cin, 48, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b5_2, p, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2, s, s);
    load_conv(L, &b->b3_1, p, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b3_2, p, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1, s, s);
    load_conv(L, &b->b3_3, p, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1, s, s);
    load_conv(L, &b->pool, p, "branch_pool", cin, pool_features, 1, 1, 1, 0, 0, s, s);
}

static void load_b(Loader *L, BlockB *b, const char *p, int cin, int s) {
    load_conv(L, &b->b3, p, "branch3x3", cin, 384, 3, 3, 2, 0, 0, s, s);
    load_conv(L, &b->b3d_1, p, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b3d_2, p, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1, s, s);
    load_conv(L, &b->b3d_3, p, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0, s, s);
}

static void load_c(Loader *L, BlockC *b, const char *p, int cin, int c7, int s) {
    load_conv(L, &b->b1, p, "branch1x1", cin, 192, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b7_1, p, "branch7x7_1", cin, c7, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b7_2, p, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3, s, s);
    load_conv(L, &b->b7_3, p, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0, s, s);
    load_conv(L, &b->b7d_1, p, "branch7x7dbl_1", cin, c7, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b7d_2, p, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0, s, s);
    load_conv(L, &b->b7d_3, p, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3, s, s);
    load_conv(L, &b->b7d_4, p, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0, s, s);
    load_conv(L, &b->b7d_5, p, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3, s, s);
    load_conv(L, &b->pool, p, "branch_pool", cin, 192, 1, 1, 1, 0, 0, s, s);
}

static void load_d(Loader *L, BlockD *b, const char *p, int cin, int s) {
    load_conv(L, &b->b3_1, p, "branch3x3_1", cin, 192, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b3_2, p, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0, s, s);
    load_conv(L, &b->b7_1, p, "branch7x7x3_1", cin, 192, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b7_2, p, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3, s, s);
    load_conv(L, &b->b7_3, p, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0, s, s);
    load_conv(L, &b->b7_4, p, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0, s, s);
}

static void load_e(Loader *L, BlockE *b, const char *p, int cin, int s) {
    load_conv(L, &b->b1, p, "branch1x1", cin, 320, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b3_1, p, "branch3x3_1", cin, 384, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b3_2a, p, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1, s, s);
    load_conv(L, &b->b3_2b, p, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0, s, s);
    load_conv(L, &b->b3d_1, p, "branch3x3dbl_1", cin, 448, 1, 1, 1, 0, 0, s, s);
    load_conv(L, &b->b3d_2, p, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1, s, s);
    load_conv(L, &b->b3d_3a, p, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1, s, s);
    load_conv(L, &b->b3d_3b, p, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0, s, s);
    load_conv(L, &b->pool, p, "branch_pool", cin, 192, 1, 1, 1, 0, 0, s, s);
}

Inception *inception_load(const char *path, InceptionFlavour flavour) {
    StFile *f = st_load(path);
    const char *meant = st_meta(f, "flavour");
    if (meant && strcmp(meant, inception_flavour_name(flavour)) != 0)
        fprintf(stderr, "ddm: warning: %s: weights converted for the '%s' flavour, used with the '%s' flavour\n", path,
                meant, inception_flavour_name(flavour));
    Inception *m = xcalloc(1, sizeof *m);
    m->flavour = flavour;
    Loader L = {f, m, 0};
    int s = INCEPTION_SIZE;                                        // 299
    load_conv(&L, &m->stem[0], "", "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0, s, s);
    s = m->stem[0].ho;                                             // 149
    load_conv(&L, &m->stem[1], "", "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0, s, s);
    s = m->stem[1].ho;                                             // 147
    load_conv(&L, &m->stem[2], "", "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1, s, s);
    s = conv_out_size(s, 3, 2, 0);                                 // 73 (max pool)
    load_conv(&L, &m->stem[3], "", "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0, s, s);
    load_conv(&L, &m->stem[4], "", "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0, s, s);
    s = conv_out_size(m->stem[4].ho, 3, 2, 0);                     // 35 (max pool)
    L.in_block = 1;
    load_a(&L, &m->a[0], "Mixed_5b.", 192, 32, s);
    load_a(&L, &m->a[1], "Mixed_5c.", 256, 64, s);
    load_a(&L, &m->a[2], "Mixed_5d.", 288, 64, s);
    load_b(&L, &m->b, "Mixed_6a.", 288, s);
    s = conv_out_size(s, 3, 2, 0);                                 // 17
    const int c7[4] = {128, 160, 160, 192};
    const char *cn[4] = {"Mixed_6b.", "Mixed_6c.", "Mixed_6d.", "Mixed_6e."};
    for (int i = 0; i < 4; i++) load_c(&L, &m->c[i], cn[i], 768, c7[i], s);
    load_d(&L, &m->d, "Mixed_7a.", 768, s);
    s = conv_out_size(s, 3, 2, 0);                                 // 8
    load_e(&L, &m->e[0], "Mixed_7b.", 1280, s);
    load_e(&L, &m->e[1], "Mixed_7c.", 2048, s);
    m->act_max = lmax(m->act_max, (long)s * s * INCEPTION_DIM); // the other block outputs are some block's input
    DDM_ASSERT(m->n_convs == INCEPTION_CONVS);
    st_free(f);
    return m;
}

void inception_free(Inception *m) {
    if (!m) return;
    for (int i = 0; i < m->n_convs; i++) { free(m->convs[i]->wp); free(m->convs[i]->shift); }
    free(m);
}

// ---------------------------------------------------------------- forward (one image)
typedef struct { float *img, *x, *y, *t0, *t1, *t2, *col; } Work;

static Work *work_new(const Inception *m) {
    Work *w = xcalloc(1, sizeof *w);
    w->img = xmalloc((size_t)INCEPTION_SIZE * INCEPTION_SIZE * 3 * sizeof(float));
    w->x = xmalloc(m->act_max * sizeof(float));
    w->y = xmalloc(m->act_max * sizeof(float));
    w->t0 = xmalloc(m->tmp_max * sizeof(float));
    w->t1 = xmalloc(m->tmp_max * sizeof(float));
    w->t2 = xmalloc(m->tmp_max * sizeof(float));
    w->col = xmalloc(m->col_max * sizeof(float));
    return w;
}

static void work_free(Work *w) {
    free(w->img); free(w->x); free(w->y); free(w->t0); free(w->t1); free(w->t2); free(w->col);
    free(w);
}

// y (channels [0, cout) of rows with stride ldy) = ReLU(BN(conv(x))).
static void conv(const IConv *c, float *y, long ldy, const float *x, float *col) {
    conv2d_packed_fwd_f32(y, ldy, col, x, c->wp, 1, c->h, c->w, c->cin, c->cout, c->kh, c->kw, c->stride, c->ph,
                          c->pw);
    long P = (long)c->ho * c->wo;
#pragma omp parallel for schedule(static)
    for (long p = 0; p < P; p++) {
        float *r = y + p * ldy;
        for (int o = 0; o < c->cout; o++) {
            float v = r[o] + c->shift[o];
            r[o] = v > 0 ? v : 0;
        }
    }
}

// One branch of a block: the convolutions c[0], c[1], ... (NULL-terminated) in sequence from x, the
// intermediates in t0 / t1, the last into channels [off, off + cout) of y (row stride ld). Returns the
// next channel offset.
static int branch(float *y, long ld, int off, const float *x, Work *w, const IConv *const *c) {
    float *tmp[2] = {w->t0, w->t1};
    const float *in = x;
    int i = 0;
    for (; c[i + 1]; i++) {
        conv(c[i], tmp[i % 2], c[i]->cout, in, w->col);
        in = tmp[i % 2];
    }
    conv(c[i], y + off, ld, in, w->col);
    return off + c[i]->cout;
}
#define BRANCH(...) branch(y, ld, off, x, w, (const IConv *const[]){__VA_ARGS__, NULL})

// The pool branch: a 3x3 stride-1 pool of x (padding 1) through the 1x1 convolution c.
static int pool_branch(float *y, long ld, int off, const float *x, Work *w, const IConv *c, PoolMode mode) {
    pool2d_fwd_f32(w->t2, c->cin, x, 1, c->h, c->w, c->cin, 3, 1, 1, mode);
    return branch(y, ld, off, w->t2, w, (const IConv *const[]){c, NULL});
}

// A 3x3 stride-2 max pool of x [s, s, C] into channels [off, off + C) of y.
static int maxpool_branch(float *y, long ld, int off, const float *x, int s, int C) {
    pool2d_fwd_f32(y + off, ld, x, 1, s, s, C, 3, 2, 0, POOL_MAX);
    return off + C;
}

static PoolMode avg_mode(const Inception *m) {
    return m->flavour == INCEPTION_FID ? POOL_AVG_EXCLUDE_PAD : POOL_AVG_INCLUDE_PAD;
}

// Each block writes its branches side by side into y, ld = the block's output channels.
static void block_a(const Inception *m, const BlockA *b, float *y, const float *x, Work *w) {
    long ld = 224 + b->pool.cout;
    int off = 0;
    off = BRANCH(&b->b1);
    off = BRANCH(&b->b5_1, &b->b5_2);
    off = BRANCH(&b->b3_1, &b->b3_2, &b->b3_3);
    off = pool_branch(y, ld, off, x, w, &b->pool, avg_mode(m));
    DDM_ASSERT(off == ld);
}

static void block_b(const BlockB *b, float *y, const float *x, Work *w) {
    long ld = 384 + 96 + b->b3.cin;
    int off = 0;
    off = BRANCH(&b->b3);
    off = BRANCH(&b->b3d_1, &b->b3d_2, &b->b3d_3);
    off = maxpool_branch(y, ld, off, x, b->b3.h, b->b3.cin);
    DDM_ASSERT(off == ld);
}

static void block_c(const Inception *m, const BlockC *b, float *y, const float *x, Work *w) {
    long ld = 768;
    int off = 0;
    off = BRANCH(&b->b1);
    off = BRANCH(&b->b7_1, &b->b7_2, &b->b7_3);
    off = BRANCH(&b->b7d_1, &b->b7d_2, &b->b7d_3, &b->b7d_4, &b->b7d_5);
    off = pool_branch(y, ld, off, x, w, &b->pool, avg_mode(m));
    DDM_ASSERT(off == ld);
}

static void block_d(const BlockD *b, float *y, const float *x, Work *w) {
    long ld = 320 + 192 + b->b3_1.cin;
    int off = 0;
    off = BRANCH(&b->b3_1, &b->b3_2);
    off = BRANCH(&b->b7_1, &b->b7_2, &b->b7_3, &b->b7_4);
    off = maxpool_branch(y, ld, off, x, b->b3_1.h, b->b3_1.cin);
    DDM_ASSERT(off == ld);
}

// The 3x3 branches split in two (1x3 and 3x1 convolutions of one input, in t2). last: Mixed_7c, whose
// pool branch is a max pool in the FID flavour.
static void block_e(const Inception *m, const BlockE *b, float *y, const float *x, Work *w, int last) {
    long ld = INCEPTION_DIM;
    int off = 0;
    off = BRANCH(&b->b1);
    conv(&b->b3_1, w->t2, b->b3_1.cout, x, w->col);
    off = branch(y, ld, off, w->t2, w, (const IConv *const[]){&b->b3_2a, NULL});
    off = branch(y, ld, off, w->t2, w, (const IConv *const[]){&b->b3_2b, NULL});
    conv(&b->b3d_1, w->t0, b->b3d_1.cout, x, w->col);
    conv(&b->b3d_2, w->t2, b->b3d_2.cout, w->t0, w->col);
    off = branch(y, ld, off, w->t2, w, (const IConv *const[]){&b->b3d_3a, NULL});
    off = branch(y, ld, off, w->t2, w, (const IConv *const[]){&b->b3d_3b, NULL});
    off = pool_branch(y, ld, off, x, w, &b->pool, last && m->flavour == INCEPTION_FID ? POOL_MAX : avg_mode(m));
    DDM_ASSERT(off == ld);
}
#undef BRANCH

// Bilinear resampling weights along one axis, as PyTorch's align_corners=False: source coordinate
// (o + 0.5) * in / out - 0.5, clamped at 0; the upper neighbour is clamped to the last pixel.
typedef struct { int i0, i1; float l0, l1; } Lerp;

static void lerp_table(Lerp *t, int in, int out) {
    float scale = (float)in / out;
    for (int o = 0; o < out; o++) {
        float src = scale * (o + 0.5f) - 0.5f;
        if (src < 0) src = 0;
        int i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        float l1 = src - i0;
        if (l1 > 1) l1 = 1;
        t[o] = (Lerp){i0, i0 < in - 1 ? i0 + 1 : i0, 1 - l1, l1};
    }
}

// img [c, h, w] -> dst [299, 299, 3]; one channel is repeated three times.
static void resize_input(float *dst, const float *img, int c, int h, int w, const Lerp *ty, const Lerp *tx) {
    const int S = INCEPTION_SIZE;
    for (int oy = 0; oy < S; oy++) {
        Lerp ly = ty[oy];
        for (int ox = 0; ox < S; ox++) {
            Lerp lx = tx[ox];
            float *o = dst + ((long)oy * S + ox) * 3;
            for (int ch = 0; ch < c; ch++) {
                const float *r0 = img + ((long)ch * h + ly.i0) * w, *r1 = img + ((long)ch * h + ly.i1) * w;
                o[ch] = ly.l0 * (lx.l0 * r0[lx.i0] + lx.l1 * r0[lx.i1]) + ly.l1 * (lx.l0 * r1[lx.i0] + lx.l1 * r1[lx.i1]);
            }
            if (c == 1) o[1] = o[2] = o[0];
        }
    }
}

static void forward_one(const Inception *m, Work *w, const float *img, int c, int h, int wd, const Lerp *ty,
                        const Lerp *tx, float *feat) {
    resize_input(w->img, img, c, h, wd, ty, tx);
    const IConv *st = m->stem;
    conv(&st[0], w->x, st[0].cout, w->img, w->col);
    conv(&st[1], w->y, st[1].cout, w->x, w->col);
    conv(&st[2], w->x, st[2].cout, w->y, w->col);
    maxpool_branch(w->y, st[2].cout, 0, w->x, st[2].ho, st[2].cout);
    conv(&st[3], w->x, st[3].cout, w->y, w->col);
    conv(&st[4], w->y, st[4].cout, w->x, w->col);
    maxpool_branch(w->x, st[4].cout, 0, w->y, st[4].ho, st[4].cout);
    float *cur = w->x, *nxt = w->y, *t;
#define NEXT() (t = cur, cur = nxt, nxt = t)
    for (int i = 0; i < 3; i++) { block_a(m, &m->a[i], nxt, cur, w); NEXT(); }
    block_b(&m->b, nxt, cur, w); NEXT();
    for (int i = 0; i < 4; i++) { block_c(m, &m->c[i], nxt, cur, w); NEXT(); }
    block_d(&m->d, nxt, cur, w); NEXT();
    for (int i = 0; i < 2; i++) { block_e(m, &m->e[i], nxt, cur, w, i == 1); NEXT(); }
#undef NEXT
    const BlockE *last = &m->e[1];
    gap_fwd_f32(feat, cur, 1, last->b1.ho * last->b1.wo, INCEPTION_DIM);
}

void inception_features(const Inception *m, const float *imgs, int n, int c, int h, int w, float *feats) {
    if (c != 1 && c != 3) ddm_fatal("Inception-v3 takes 1- or 3-channel images, got %d channels", c);
    if (h < 1 || w < 1) ddm_fatal("Inception-v3: bad image size %dx%d", h, w);
    Lerp *ty = xmalloc(INCEPTION_SIZE * sizeof(Lerp)), *tx = xmalloc(INCEPTION_SIZE * sizeof(Lerp));
    lerp_table(ty, h, INCEPTION_SIZE);
    lerp_table(tx, w, INCEPTION_SIZE);
    long per = (long)c * h * w;
    // Enough images for every thread: one image per thread (OpenBLAS runs single-threaded inside a
    // parallel region); else one image at a time with threaded GEMMs and loops.
    if (n >= omp_get_max_threads() && n > 1) {
#pragma omp parallel
        {
            Work *wk = work_new(m);
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < n; i++) forward_one(m, wk, imgs + i * per, c, h, w, ty, tx, feats + (long)i * INCEPTION_DIM);
            work_free(wk);
        }
    } else {
        Work *wk = work_new(m);
        for (int i = 0; i < n; i++) forward_one(m, wk, imgs + i * per, c, h, w, ty, tx, feats + (long)i * INCEPTION_DIM);
        work_free(wk);
    }
    free(ty);
    free(tx);
}
