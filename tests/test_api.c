// The public header: ddm_model_* loads a checkpoint written by the library and reproduces the
// internal model's output and block outputs; ddm_dispersive_loss is callable by name.
#include <string.h>
#include "ddm.h"
#include "nn/dit.h"
#include "rng.h"
#include "test.h"
#include "model/checkpoint.h"
#include "train/train.h"

int main(void) {
    TrainConfig tc;
    train_config_defaults(&tc);
    tc.model = (DitConfig){.depth = 2, .hidden = 16, .heads = 2, .patch = 2, .in_channels = 1, .height = 4,
                           .width = 4, .num_classes = 3, .learn_sigma = 1, .mlp_ratio = 4};
    Dit *m = dit_create(&tc.model, &ops_cpu);
    Rng r;
    rng_init(&r, 4, 4);
    rng_normal_fill(&r, m->params, (long)m->total);    // non-trivial weights everywhere
    char *json = train_config_to_json(&tc);
    CheckpointOut co = {.model = m, .ema = m->params, .step = 1, .config_json = json};
    const char *path = "/tmp/ddm_test_api.safetensors";
    checkpoint_save(path, &co);
    float x[2 * 16], t[2] = {0.2f, 0.7f}, want[2 * 2 * 16], got[2 * 2 * 16];
    int y[2] = {1, 3};
    rng_normal_fill(&r, x, 32);
    dit_forward(m, want, x, t, y, 2);
    ddm_model *pm = ddm_model_load(path, 1);
    int ch, h, w, nc, depth, hidden, oc;
    ddm_model_info(pm, &ch, &h, &w, &nc, &depth, &hidden, &oc);
    CHECK(ch == 1 && h == 4 && w == 4 && nc == 3 && depth == 2 && hidden == 16 && oc == 2, "model info");
    ddm_model_forward(pm, x, t, y, 2, got);
    CHECK(memcmp(got, want, sizeof got) == 0, "public forward equals the internal forward bit for bit");
    CHECK(memcmp(ddm_model_block_output(pm, 1), m->a.blk[1].out, 2 * 4 * 16 * sizeof(float)) == 0, "block output");
    float z[3 * 5], dz[3 * 5];
    rng_normal_fill(&r, z, 15);
    float L = ddm_dispersive_loss(z, 3, 5, "infonce_l2", 0.5f, 1.0f, dz);
    CHECK(isfinite(L) && L <= 0 && L >= -logf(3) - 1e-6f, "dispersive loss in [-log B, 0]: %g", L);
    ddm_model_free(pm);
    dit_free(m);
    free(json);
    remove(path);
    TEST_MAIN_END();
}
