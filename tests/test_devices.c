// The device boundary (src/ops/ops.h): --device selection, cpu-isolated's wall (host code cannot touch its
// memory; its ops refuse host memory), and a whole training step on cpu-isolated bit-identical to cpu.
#include <signal.h>
#include <string.h>
#include "loss/dispersive.h"
#include "ops/ops.h"
#include "rng.h"
#include "test.h"
#include "train/step.h"

static const Ops *iso(void) {
    const char *err;
    const Ops *o = ops_select("cpu-isolated", "fp32", &err);
    if (!o) { fprintf(stderr, "%s\n", err); exit(1); }
    return o;
}

static void test_select(void) {
    const char *err;
    CHECK(ops_select("cpu", "fp32", &err) == &ops_cpu && !err, "cpu fp32");
    const Ops *o = ops_select("cpu-isolated", "fp32", &err);
    CHECK(o && o != &ops_cpu && !strcmp(o->device, "cpu-isolated"), "cpu-isolated is a table of its own");
    CHECK(!ops_select("tpu", "fp32", &err) && err && strstr(err, "--device 'tpu'") && strstr(err, ops_device_names()),
          "an unknown device names this build's devices: %s", err ? err : "");
#ifndef DDM_CUDA
    CHECK(!ops_select("cuda", "fp32", &err) && err && strstr(err, "no CUDA"), "cuda without a CUDA build: %s",
          err ? err : "");
#endif
    CHECK(!ops_select("cpu", "fp8", &err) && err && strstr(err, "--precision fp8"), "unknown precision");
}

static float *g_dev;
static void touch_from_host(void) { g_dev[0] = 1.0f; }   // must crash
static void read_from_host(void) { volatile float v = g_dev[3]; (void)v; }
static float g_host[8];
static void op_on_host_memory(void) { iso()->scale(g_host, 2.0f, 8); }   // must be refused

static void test_wall(void) {
    const Ops *o = iso();
    float h[8] = {1, 2, 3, 4, 5, 6, 7, 8}, back[8] = {0};
    g_dev = ops_alloc_f32(o, 8);
    ops_upload_f32(o, g_dev, h, 8);
    o->scale(g_dev + 2, 10.0f, 2);   // pointer arithmetic inside an allocation is allowed
    ops_download_f32(o, back, g_dev, 8);
    CHECK(back[1] == 2 && back[2] == 30 && back[3] == 40 && back[4] == 5, "upload, an op, download");
    char msg[512];
    int st = run_in_child(touch_from_host, msg, sizeof msg);
    CHECK(st == -1, "a host write to cpu-isolated memory crashes (status %d)", st);
    st = run_in_child(read_from_host, msg, sizeof msg);
    CHECK(st == -1, "a host read of cpu-isolated memory crashes (status %d)", st);
    st = run_in_child(op_on_host_memory, msg, sizeof msg);
    CHECK(st == 2 && strstr(msg, "host pointer"), "a cpu-isolated op refuses host memory: %d %s", st, msg);
    o->free(g_dev);
    o->free(NULL);
}

// One training step (forward, objective, Dispersive Loss, backward, clip, AdamW, EMA) on a table; returns the loss
// and leaves the updated weights and EMA in host arrays.
static float one_step(const Ops *o, float *params, float *ema, size_t *total) {
    DitConfig c = {2, 32, 2, 4, 1, 8, 8, 3, 1, 4};
    Dit *m = dit_create(&c, o);
    dit_init(m, 5);
    int B = 4, block = 0;
    StepBatch sb;
    step_batch_init(&sb, m, B);
    Rng r;
    rng_init(&r, 9, 0);
    for (long i = 0; i < B * sb.n; i++) sb.h_x[i] = 2 * rng_uniform(&r) - 1;
    rng_normal_fill(&r, sb.h_noise, B * sb.n);
    for (int b = 0; b < B; b++) { sb.h_t[b] = rng_uniform(&r); sb.h_y[b] = b % 4; }
    step_upload(&sb, m, B);
    Objective obj;
    objective_init(&obj, OBJ_SIT_LINEAR);
    objective_bind(&obj, o, B);
    DispSetup d;
    disp_setup_init(&d, m, DISP_INFONCE_L2, 0.5f, 0.5f, 1, &block, 1, B);
    OptimState os;
    optim_init(&os, m);
    LossParts lp = step_loss_and_grads(m, &obj, &d, &sb, B, NULL);
    optim_clip(m, 0.01f);
    optim_adamw(m, &os, 0, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
    optim_ema(m, &os, 0.9f);
    *total = m->total;
    ops_download_f32(o, params, m->params, m->total);
    ops_download_f32(o, ema, os.ema, m->total);
    optim_free(&os, m);
    disp_setup_free(&d, m);
    objective_unbind(&obj);
    step_batch_free(&sb);
    dit_free(m);
    return lp.total;
}

static void test_step_identical(void) {
    static float p1[1 << 20], e1[1 << 20], p2[1 << 20], e2[1 << 20];
    size_t n1, n2;
    float l1 = one_step(&ops_cpu, p1, e1, &n1), l2 = one_step(iso(), p2, e2, &n2);
    CHECK(n1 == n2 && l1 == l2, "the same loss on cpu and cpu-isolated: %.9g %.9g", l1, l2);
    CHECK(!memcmp(p1, p2, n1 * sizeof(float)) && !memcmp(e1, e2, n1 * sizeof(float)),
          "bit-identical weights and EMA after a step on cpu and cpu-isolated");
}

// The device Dispersive Loss is the host one, bit for bit (the Gram through syrk, G Z through gemm_fp32).
static void test_dispersive_device(void) {
    enum { B = 5, D = 37 };
    float z[B * D], g1[B * D], g2[B * D];
    Rng r;
    rng_init(&r, 3, 1);
    rng_normal_fill(&r, z, B * D);
    const Ops *o = iso();
    float *dz = ops_alloc_f32(o, B * D), *dg = ops_alloc_f32(o, B * D);
    ops_upload_f32(o, dz, z, B * D);
    DispWork w;
    disp_work_init(&w, o, B);
    for (int v = 0; v <= DISP_COVARIANCE; v++) {
        float a = dispersive_loss_f32(z, B, D, (DispVariant)v, 0.7f, 1.3f, g1);
        float b = dispersive_loss_dev(&w, dz, B, D, (DispVariant)v, 0.7f, 1.3f, dg);
        ops_download_f32(o, g2, dg, B * D);
        CHECK(a == b && !memcmp(g1, g2, sizeof g1), "%s on the device = on the host", dispersive_variant_name(v));
    }
    disp_work_free(&w);
    o->free(dz);
    o->free(dg);
}

int main(void) {
    test_select();
    test_wall();
    test_step_identical();
    test_dispersive_device();
    TEST_MAIN_END();
}
