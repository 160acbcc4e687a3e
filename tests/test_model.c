// The DiT/SiT model: parameter names and counts, reference initialisation, and a whole-model
// directional-derivative check of dit_backward (float32, so a loose tolerance; the layer-by-layer
// float64 checks are in test_ops and the exact comparison with PyTorch in test_twin).
#include <string.h>
#include "nn/dit.h"
#include "rng.h"
#include "test.h"

static size_t count_all(const Dit *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->info[i].numel;
    return n;
}

static Dit *make(const char *variant, int size, int ch, int classes, int sigma) {
    DitConfig c = {.in_channels = ch, .height = size, .width = size, .num_classes = classes,
                   .learn_sigma = sigma, .mlp_ratio = 4};
    if (!dit_variant_parse(variant, &c)) return NULL;
    return dit_create(&c, &ops_cpu);
}

static void test_param_counts(void) {
    // SPEC §2: 256px latents (32x32x4), learned sigma, 1000 classes; counts include the frozen pos_embed.
    struct { const char *v; double want; double tol; } cases[] = {
        {"S/2", 32.96e6, 0.005e6}, {"B/2", 130.51e6, 0.005e6}, {"L/2", 458.10e6, 0.005e6}, {"XL/2", 675129632, 0.5}};
    for (int i = 0; i < 4; i++) {
        Dit *m = make(cases[i].v, 32, 4, 1000, 1);
        double n = (double)count_all(m);
        CHECK(fabs(n - cases[i].want) <= cases[i].tol, "%s has %.0f parameters, want %.0f", cases[i].v, n, cases[i].want);
        dit_free(m);
    }
    // SPEC §2: forward GFLOPs counted as multiply-adds, XL/2 118.6 and XL/4 29.05 at 32x32x4
    DitConfig xl = {.in_channels = 4, .height = 32, .width = 32, .num_classes = 1000, .learn_sigma = 1, .mlp_ratio = 4};
    dit_variant_parse("XL/2", &xl);
    double g2 = dit_forward_flops(&xl, 1) / 2e9;
    dit_variant_parse("XL/4", &xl);
    double g4 = dit_forward_flops(&xl, 1) / 2e9;
    CHECK(fabs(g2 - 118.6) < 0.6 && fabs(g4 - 29.05) < 0.3, "XL/2 %.2f and XL/4 %.2f GMACs (want 118.6, 29.05)", g2, g4);
    Dit *m = make("S/4", 28, 1, 10, 0);
    CHECK(dit_param(m, "blocks.11.adaLN_modulation.1.weight") != NULL, "block names");
    const ParamInfo *p = dit_param(m, "x_embedder.proj.weight");
    CHECK(p && p->ndim == 4 && p->shape[0] == 384 && p->shape[1] == 1 && p->shape[2] == 4 && p->shape[3] == 4,
          "conv weight layout [out, in, kh, kw]");
    p = dit_param(m, "final_layer.linear.weight");
    CHECK(p && p->shape[0] == 16 && p->shape[1] == 384, "final linear [p*p*C, H]");
    p = dit_param(m, "y_embedder.embedding_table.weight");
    CHECK(p && p->shape[0] == 11, "label table has a null row");
    CHECK(dit_param(m, "pos_embed") && !dit_param(m, "pos_embed")->trainable, "pos_embed is frozen");
    dit_free(m);
    m = make("S/4", 28, 1, 0, 0);
    CHECK(dit_param(m, "y_embedder.embedding_table.weight") == NULL, "unconditional: no label table");
    dit_free(m);
}

static int all_zero(const float *x, size_t n) { for (size_t i = 0; i < n; i++) if (x[i] != 0) return 0; return 1; }

static void test_init(void) {
    DitConfig c = {.depth = 2, .hidden = 32, .heads = 4, .patch = 2, .in_channels = 3, .height = 8, .width = 8,
                   .num_classes = 5, .learn_sigma = 1, .mlp_ratio = 4};
    Dit *m = dit_create(&c, &ops_cpu), *m2 = dit_create(&c, &ops_cpu);
    dit_init(m, 3);
    dit_init(m2, 3);
    CHECK(memcmp(m->params, m2->params, m->total * sizeof(float)) == 0, "init is deterministic in the seed");
    CHECK(all_zero(m->w.blk[1].ada_w, 6 * 32 * 32) && all_zero(m->w.blk[1].ada_b, 6 * 32), "adaLN starts at zero");
    CHECK(all_zero(m->w.f_w, 2 * 2 * 6 * 32) && all_zero(m->w.f_ada_w, 2 * 32 * 32), "final layer starts at zero");
    CHECK(all_zero(m->w.blk[0].qkv_b, 96) && all_zero(m->w.x_b, 32), "biases start at zero");
    float bound = sqrtf(6.0f / (32 + 96)), mx = 0;
    for (int i = 0; i < 96 * 32; i++) mx = fmaxf(mx, fabsf(m->w.blk[0].qkv_w[i]));
    CHECK(mx <= bound && mx > 0.9f * bound, "qkv xavier-uniform bound %g (max %g)", bound, mx);
    double s = 0;
    for (int i = 0; i < 6 * 32; i++) s += m->w.y_table[i] * m->w.y_table[i];
    CHECK(fabs(sqrt(s / 192) - 0.02) < 0.005, "label table std 0.02 (got %g)", sqrt(s / 192));
    float pos[16 * 32];
    dit_pos_embed_2d(pos, 32, 4, 4);
    CHECK(memcmp(pos, m->w.pos, sizeof pos) == 0, "pos_embed holds the 2-D sin-cos table");
    // adaLN-Zero: a freshly initialised model outputs exactly zero
    float x[2 * 3 * 64], out[2 * 6 * 64], t[2] = {0.3f, 0.9f};
    int y[2] = {1, 5};
    Rng r;
    rng_init(&r, 1, 1);
    rng_normal_fill(&r, x, 2 * 3 * 64);
    dit_forward(m, out, x, t, y, 2);
    CHECK(all_zero(out, 2 * 6 * 64), "zero-initialised model outputs zero");
    dit_free(m);
    dit_free(m2);
}

// L = <R, f(x)> + <Q, block 0 output>; compare dL along a random parameter direction with (L(p+hv)-L(p-hv))/2h.
static double model_loss(Dit *m, float *out, const float *x, const float *t, const int *y, int B, const float *R,
                         const float *Q, long n_out, long n_blk) {
    dit_forward(m, out, x, t, y, B);
    double L = 0;
    for (long i = 0; i < n_out; i++) L += (double)out[i] * R[i];
    for (long i = 0; i < n_blk; i++) L += (double)m->a.blk[0].out[i] * Q[i];
    return L;
}

static void test_directional_derivative(int classes, int sigma) {
    DitConfig c = {.depth = 2, .hidden = 16, .heads = 2, .patch = 2, .in_channels = 2, .height = 4, .width = 6,
                   .num_classes = classes, .learn_sigma = sigma, .mlp_ratio = 4};
    Dit *m = dit_create(&c, &ops_cpu);
    Rng r;
    rng_init(&r, 11, 2);
    for (int i = 0; i < m->n_params; i++)   // random weights everywhere (adaLN-Zero would hide paths)
        if (m->info[i].trainable)
            for (size_t k = 0; k < m->info[i].numel; k++) m->params[m->info[i].offset + k] = 0.3f * rng_normal(&r);
    dit_pos_embed_2d(m->w.pos, 16, 2, 3);
    enum { B = 3 };
    long n_in = B * 2 * 24, n_out = B * dit_out_channels(&c) * 24, n_blk = B * 6 * 16;
    float x[B * 2 * 24], t[B] = {0.1f, 0.5f, 0.95f}, R[B * 4 * 24], Q[B * 6 * 16], out[B * 4 * 24], dx[B * 2 * 24];
    int y[B] = {0, 2, classes};
    rng_normal_fill(&r, x, n_in);
    rng_normal_fill(&r, R, n_out);
    rng_normal_fill(&r, Q, n_blk);
    dit_zero_grad(m);
    model_loss(m, out, x, t, classes ? y : NULL, B, R, Q, n_out, n_blk);
    float *extra[2] = {Q, NULL};
    dit_backward(m, R, extra, dx);
    float *v = calloc(m->total, sizeof(float)), *p0 = malloc(m->total * sizeof(float));
    memcpy(p0, m->params, m->total * sizeof(float));
    double analytic = 0, vnorm = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->info[i].trainable)
            for (size_t k = 0; k < m->info[i].numel; k++) {
                size_t o = m->info[i].offset + k;
                v[o] = rng_normal(&r);
                vnorm += (double)v[o] * v[o];
            }
    for (size_t o = 0; o < m->total; o++) {   // a unit direction keeps the step small in every tensor
        v[o] /= (float)sqrt(vnorm);
        analytic += (double)v[o] * m->grads[o];
    }
    const float h = 1e-2f;
    for (size_t o = 0; o < m->total; o++) m->params[o] = p0[o] + h * v[o];
    double lp = model_loss(m, out, x, t, classes ? y : NULL, B, R, Q, n_out, n_blk);
    for (size_t o = 0; o < m->total; o++) m->params[o] = p0[o] - h * v[o];
    double lm = model_loss(m, out, x, t, classes ? y : NULL, B, R, Q, n_out, n_blk);
    double numeric = (lp - lm) / (2 * h);
    CHECK(fabs(numeric - analytic) <= 2e-3 * fabs(analytic) + 1e-3, "parameter directional derivative: numeric %g analytic %g",
          numeric, analytic);
    // and the input gradient
    memcpy(m->params, p0, m->total * sizeof(float));
    float xv[B * 2 * 24], xp[B * 2 * 24];
    rng_normal_fill(&r, xv, n_in);
    double xn = 0;
    for (long i = 0; i < n_in; i++) xn += (double)xv[i] * xv[i];
    for (long i = 0; i < n_in; i++) xv[i] /= (float)sqrt(xn);
    double an_x = 0;
    for (long i = 0; i < n_in; i++) { an_x += (double)xv[i] * dx[i]; xp[i] = x[i] + h * xv[i]; }
    lp = model_loss(m, out, xp, t, classes ? y : NULL, B, R, Q, n_out, n_blk);
    for (long i = 0; i < n_in; i++) xp[i] = x[i] - h * xv[i];
    lm = model_loss(m, out, xp, t, classes ? y : NULL, B, R, Q, n_out, n_blk);
    numeric = (lp - lm) / (2 * h);
    CHECK(fabs(numeric - an_x) <= 2e-3 * fabs(an_x) + 1e-3, "input directional derivative: numeric %g analytic %g", numeric, an_x);
    free(v);
    free(p0);
    dit_free(m);
}

static void test_config_errors(void) {
    DitConfig c = {.depth = 2, .hidden = 30, .heads = 4, .patch = 2, .in_channels = 1, .height = 8, .width = 8, .mlp_ratio = 4};
    CHECK(dit_config_error(&c) != NULL, "hidden not divisible by heads is rejected");
    c.hidden = 32; c.height = 7;
    CHECK(dit_config_error(&c) != NULL, "image size not divisible by patch is rejected");
    c.height = 8;
    CHECK(dit_config_error(&c) == NULL, "valid config accepted");
    DitConfig v;
    CHECK(dit_variant_parse("XL/8", &v) && v.depth == 28 && v.hidden == 1152 && v.heads == 16 && v.patch == 8, "XL/8");
    CHECK(!dit_variant_parse("M/2", &v) && !dit_variant_parse("S/3", &v), "unknown variants rejected");
}

int main(void) {
    test_param_counts();
    test_init();
    test_directional_derivative(3, 0);
    test_directional_derivative(0, 1);
    test_config_errors();
    TEST_MAIN_END();
}
