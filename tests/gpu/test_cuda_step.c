// A full training step (SiT objective, Dispersive Loss, forward, backward, clipping, AdamW, EMA) on the GPU against
// the same step on the CPU from the same weights and batch: the loss, every parameter's gradient, the gradient
// norm and the AdamW update. Strict fp32 (TF32 off) to tight tolerances; TF32 and bf16 within the bounds
// tests/test_bf16.c uses for the CPU's bf16 (scaled by the input rounding for TF32). The GPU step is also run twice:
// bit-identical. Skipped (exit 0, one line) without a GPU. Built by `make cuda`; run by tests/gpu/run.sh.
#include "loss/dispersive.h"
#include "ops/cuda/cuda_backend.h"
#include "ops/ops.h"
#include "rng.h"
#include "../test.h"
#include "train/step.h"

enum { B = 8 };
static const double U24 = 1.0 / (1 << 24);

typedef struct {
    size_t total;
    float *grads, *params, *ema;   // host copies: gradients before clipping, weights and EMA after the step
    float loss, diff, disp, norm;
} StepOut;

// One step on `o` from the weights `init` (host, or NULL: dit_init) with a fixed batch; random (not adaLN-zero)
// weights make every product matter.
static StepOut one_step(const Ops *o, const DitConfig *c, const float *init, float lr, float clip) {
    StepOut r = {0};
    Dit *m = dit_create(c, o);
    r.total = m->total;
    ops_upload_f32(o, m->params, init, m->total);
    StepBatch sb;
    step_batch_init(&sb, m, B);
    Rng g;
    rng_init(&g, 21, 0);
    for (long i = 0; i < B * sb.n; i++) sb.h_x[i] = 2 * rng_uniform(&g) - 1;
    rng_normal_fill(&g, sb.h_noise, B * sb.n);
    for (int b = 0; b < B; b++) { sb.h_t[b] = rng_uniform(&g); sb.h_y[b] = b % (c->num_classes + 1); }
    step_upload(&sb, m, B);
    Objective obj;
    objective_init(&obj, OBJ_SIT_LINEAR);
    objective_bind(&obj, o, B);
    int block = 1;
    DispSetup d;
    disp_setup_init(&d, m, DISP_INFONCE_L2, 0.5f, 0.5f, 1, &block, 1, B);
    OptimState os;
    optim_init(&os, m);
    LossParts lp = step_loss_and_grads(m, &obj, &d, &sb, B, NULL);
    r.loss = lp.total; r.diff = lp.diff; r.disp = lp.disp;
    r.grads = malloc(m->total * 4); r.params = malloc(m->total * 4); r.ema = malloc(m->total * 4);
    ops_download_f32(o, r.grads, m->grads, m->total);
    r.norm = optim_clip(m, clip);
    optim_adamw(m, &os, 0, lr, 0.9f, 0.999f, 1e-8f, 0.01f);
    optim_ema(m, &os, 0.9f);
    ops_download_f32(o, r.params, m->params, m->total);
    ops_download_f32(o, r.ema, os.ema, m->total);
    optim_free(&os, m);
    disp_setup_free(&d, m);
    objective_unbind(&obj);
    step_batch_free(&sb);
    dit_free(m);
    return r;
}

static void step_free(StepOut *s) { free(s->grads); free(s->params); free(s->ema); }

static double rel_l2(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) { d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]); s += (double)b[i] * b[i]; }
    return sqrt(d / (s + 1e-300));
}

// Every trainable tensor's gradient within `tol` (normwise: max error / max |reference| of that tensor).
static int grads_close(const Dit *m, const float *got, const float *want, double tol, const char *what) {
    int ok = 1;
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        if (!p->trainable) continue;
        double e = 0, s = 0;
        for (size_t k = p->offset; k < p->offset + p->numel; k++) {
            double d = fabs((double)got[k] - want[k]);
            e = isnan(d) || d > e ? (isnan(d) ? INFINITY : d) : e;
            s = fmax(s, fabs(want[k]));
        }
        if (!(e <= tol * s + 1e-30)) {
            fprintf(stderr, "  %s: gradient of %s: max error %.3g, max |grad| %.3g (tolerance %.3g)\n", what, p->name, e, s,
                    tol);
            ok = 0;
        }
    }
    return ok;
}

// The AdamW step from the clipped gradients: at the first step the update is f(g) = lr g / (|g| + eps) (mhat = g,
// vhat = g^2), whose slope is lr eps / (|g| + eps)^2 <= lr / (|g| + eps), so two gradients a, b move it apart by at
// most lr |a - b| / (m + eps), m the smallest |g| between them (0 if they differ in sign); weight decay and the
// float rounding of p - update add a few ulp of p.
static int update_close(const StepOut *gpu, const StepOut *cpu, const float *init, float lr, const char *what) {
    double cg = gpu->norm > 1 ? 1 / (gpu->norm + 1e-6) : 1, cc = cpu->norm > 1 ? 1 / (cpu->norm + 1e-6) : 1;
    double worst = 0;
    for (size_t i = 0; i < cpu->total; i++) {
        double gg = gpu->grads[i] * cg, gc = cpu->grads[i] * cc;
        double mg = (gg < 0) != (gc < 0) ? 0 : fmin(fabs(gg), fabs(gc));
        double bound = 1.01 * lr * fabs(gg - gc) / (mg + 1e-8) + 8 * U24 * fabs(init[i]) + 1e-3 * lr;
        double r = fabs((double)gpu->params[i] - cpu->params[i]) / bound;
        if (!(r <= worst)) worst = r;
    }
    if (!(worst <= 1)) fprintf(stderr, "  %s: AdamW update error/bound %.3g\n", what, worst);
    return worst <= 1;
}

int main(void) {
    const char *err, *dev = getenv("DDM_TEST_DEVICE");   // =cpu: a self-test of the bounds on the CPU tables
    const Ops *g32 = ops_select(dev ? dev : "cuda", "fp32", &err), *g16;
    if (!g32) {
        printf("test_cuda_step: skipped: no GPU (%s)\n", err);
        return 0;
    }
    g16 = ops_select(dev ? dev : "cuda", "bf16", &err);
    if (!g16 && !dev) {
        printf("test_cuda_step: no bf16 table (%s)\n", err);
        return 1;
    }
    if (!g16) printf("test_cuda_step: self-test without the bf16 checks (%s)\n", err);
    DitConfig c = {.depth = 3, .hidden = 64, .heads = 4, .patch = 4, .in_channels = 2, .height = 16, .width = 16,
                   .num_classes = 5, .learn_sigma = 1, .mlp_ratio = 4};
    Dit *ref = dit_create(&c, &ops_cpu);
    dit_init(ref, 7);
    float *init = malloc(ref->total * 4);
    memcpy(init, ref->params, ref->total * 4);
    Rng r;
    rng_init(&r, 5, 5);
    for (int i = 0; i < ref->n_params; i++)   // perturb every trainable tensor: adaLN-zero would hide the blocks
        if (ref->info[i].trainable)
            for (size_t k = ref->info[i].offset; k < ref->info[i].offset + ref->info[i].numel; k++)
                init[k] += 0.05f * rng_normal(&r);
    const float lr = 1e-3f, clip = 1.0f;
    StepOut cpu = one_step(&ops_cpu, &c, init, lr, clip);

    // strict fp32: the same arithmetic up to summation order
    int tf32 = ops_cuda_set_tf32(0);
    StepOut s1 = one_step(g32, &c, init, lr, clip), s2 = one_step(g32, &c, init, lr, clip);
    CHECK(fabs(s1.loss - cpu.loss) <= 1e-5 * fabs(cpu.loss) + 1e-6 && fabs(s1.diff - cpu.diff) <= 1e-5 * cpu.diff,
          "strict fp32 loss %.8g (diffusion %.8g) vs CPU %.8g (%.8g)", s1.loss, s1.diff, cpu.loss, cpu.diff);
    CHECK(grads_close(ref, s1.grads, cpu.grads, 1e-4, "strict fp32"), "strict fp32: every parameter's gradient");
    CHECK(fabs(s1.norm - cpu.norm) <= 1e-5 * cpu.norm, "strict fp32 gradient norm %.8g vs %.8g", s1.norm, cpu.norm);
    CHECK(update_close(&s1, &cpu, init, lr, "strict fp32"), "strict fp32: the AdamW update");
    double ema_err = 0;   // EMA = 0.9 init + 0.1 p from the GPU's own new weights (the update's error is above)
    for (size_t i = 0; i < cpu.total; i++) {
        double want = 0.9f * init[i] + (1 - 0.9f) * s1.params[i];
        ema_err = fmax(ema_err, fabs(s1.ema[i] - want) / (4 * U24 * (fabs(init[i]) + fabs(s1.params[i])) + 1e-30));
    }
    CHECK(ema_err <= 1, "strict fp32: the EMA (error/bound %.3g)", ema_err);
    CHECK(s1.loss == s2.loss && !memcmp(s1.grads, s2.grads, cpu.total * 4) && !memcmp(s1.params, s2.params, cpu.total * 4)
          && !memcmp(s1.ema, s2.ema, cpu.total * 4), "two GPU steps are bit-identical (deterministic)");

    // TF32 and bf16 against the fp32 CPU: test_bf16.c's bounds for bf16 (loss within 1%, gradients 5% rel. L2);
    // TF32's inputs keep 10 bits where bf16 keeps 8 (7 stored), so a quarter of those
    ops_cuda_set_tf32(1);
    StepOut t = one_step(g32, &c, init, lr, clip), h = one_step(g16 ? g16 : g32, &c, init, lr, clip);
    double et = rel_l2(t.grads, cpu.grads, cpu.total), eh = rel_l2(h.grads, cpu.grads, cpu.total);
    if (getenv("SHOW")) printf("loss cpu %.6f tf32 %.6f bf16 %.6f; gradient rel. L2 tf32 %.5f bf16 %.5f\n", cpu.loss, t.loss, h.loss, et, eh);
    CHECK(fabs(t.diff - cpu.diff) <= 0.0025 * cpu.diff && et < 0.0125, "TF32: diffusion loss %.6g vs %.6g, gradients rel. L2 %.4g",
          t.diff, cpu.diff, et);
    CHECK(fabs(h.diff - cpu.diff) <= 0.01 * cpu.diff && eh < 0.05, "bf16: diffusion loss %.6g vs %.6g, gradients rel. L2 %.4g",
          h.diff, cpu.diff, eh);
    if (g16) CHECK(eh > 0, "the bf16 table really computes in bf16 (gradients differ from fp32)");
    ops_cuda_set_tf32(tf32);
    step_free(&cpu); step_free(&s1); step_free(&s2); step_free(&t); step_free(&h);
    free(init);
    dit_free(ref);
    TEST_MAIN_END();
}
