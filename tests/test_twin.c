// Parity with the PyTorch twin (tools/twin.py): for each tiny configuration the twin wrote, the C model
// must reproduce the objective's inputs, the model and block outputs, the embeddings, the diffusion and
// Dispersive losses, every parameter gradient, the input gradient and three clipped AdamW + EMA steps
// (the ldae case: x_t in the PCA latent of the tokenizer stored in the reference file, and the l-DAE loss;
// the denoise_* cases: the l-DAE trajectory's settings, set up from the case's config as `ddm train` does).
// Usage: test_twin DIR (default build/ref), where DIR holds the twin's *.safetensors files.
#include <cjson/cJSON.h>
#include <string.h>
#include "io/safetensors.h"
#include "ddm.h"
#include "loss/dispersive.h"
#include "nn/dit.h"
#include "model/checkpoint.h"
#include "train/step.h"
#include "train/train.h"
#include "test.h"

static const char *g_dir = "build/ref";

static const float *want(const StFile *f, const char *name, long n) {
    const StTensor *t = st_find(f, name);
    if (!t || t->dtype != ST_F32 || (long)(t->nbytes / 4) != n) {
        fprintf(stderr, "  %s: reference tensor '%s' missing or not F32[%ld]\n", f->path, name, n);
        return NULL;
    }
    return t->data;
}

static int cmp(const StFile *f, const char *name, const float *got, long n, double atol, double rtol) {
    const float *w = want(f, name, n);
    char what[200];
    snprintf(what, sizeof what, "%s %s", f->path, name);
    return w && close_enough(got, w, n, atol, rtol, what);
}

static double jnum(cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble; }

// The objective from the case's config, through train_objective_setup as `ddm train` (the denoise settings
// under their checkpoint-config names; absent = unset).
static void objective_from_config(cJSON *cfg, Objective *obj) {
    TrainConfig tc = {.single_t = -1};
    struct { const char *key; char *v; size_t n; } s[] = {
        {"objective", tc.objective, sizeof tc.objective}, {"noise", tc.noise, sizeof tc.noise},
        {"tokenizer", tc.tokenizer, sizeof tc.tokenizer}, {"target", tc.target, sizeof tc.target},
        {"pca_output", tc.pca_output, sizeof tc.pca_output}, {"loss_weight", tc.loss_weight, sizeof tc.loss_weight}};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, s[i].key);
        if (cJSON_IsString(v)) snprintf(s[i].v, s[i].n, "%s", v->valuestring);
    }
    if (cJSON_GetObjectItemCaseSensitive(cfg, "single_noise_level")) tc.single_t = (float)jnum(cfg, "single_noise_level");
    train_objective_setup(&tc, obj);
}

static void run_case(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", g_dir, name);
    StFile *f = st_load(path);
    cJSON *cfg = cJSON_Parse(st_meta(f, "config"));
    DitConfig c = {.depth = (int)jnum(cfg, "depth"), .hidden = (int)jnum(cfg, "hidden"), .heads = (int)jnum(cfg, "heads"),
                   .patch = (int)jnum(cfg, "patch"), .in_channels = (int)jnum(cfg, "in_channels"),
                   .num_classes = (int)jnum(cfg, "num_classes"), .learn_sigma = cJSON_IsTrue(cJSON_GetObjectItem(cfg, "learn_sigma")),
                   .mlp_ratio = 4};
    cJSON *size = cJSON_GetObjectItem(cfg, "input_size");
    c.height = cJSON_GetArrayItem(size, 0)->valueint;
    c.width = cJSON_GetArrayItem(size, 1)->valueint;
    Dit *m = dit_create(&c, &ops_cpu);
    checkpoint_load_tensors(f, m, "", m->params, 0);
    int B = (int)jnum(cfg, "batch"), Cout = dit_out_channels(&c), T = dit_num_tokens(&c), H = c.hidden;
    long n = (long)c.in_channels * c.height * c.width, nout = (long)Cout * c.height * c.width;
    Objective obj;
    objective_from_config(cfg, &obj);
    Pca *pca = NULL;   // ldae, denoise pca: the tokenizer, read back as a checkpoint embeds it (pca.* tensors and metadata)
    if (objective_uses_pca(&obj)) {
        pca = checkpoint_pca(f);
        CHECK(pca != NULL, "%s: reference file holds the PCA tokenizer", name);
        if (!pca) return;
        objective_set_pca(&obj, pca, c.in_channels, c.height, c.width, name);
    }
    // inputs
    const float *x = want(f, "in.x", B * n), *noise = want(f, "in.noise", B * n), *t = want(f, "in.t", B);
    int y[64] = {0};
    const StTensor *yt = st_find(f, "in.y");
    for (int b = 0; yt && b < B; b++) y[b] = (int)((const int64_t *)yt->data)[b];
    if (obj.single_t >= 0) {   // the single noise level: what the objective draws is the case's t
        float ts[64];
        Rng r;
        rng_init(&r, 1, 0);
        objective_sample_t(&obj, &r, ts, B);
        CHECK(t && memcmp(ts, t, (size_t)B * sizeof(float)) == 0, "%s: every sample at the single noise level", name);
    }
    // Dispersive Loss set-up
    const char *vname = cJSON_GetObjectItem(cfg, "disp_variant")->valuestring;
    int variant = dispersive_variant_parse(vname), blocks[DISP_MAX_BLOCKS], nb = 0;
    cJSON *bl;
    cJSON_ArrayForEach(bl, cJSON_GetObjectItem(cfg, "disp_blocks")) blocks[nb++] = bl->valueint;
    DispSetup d;
    disp_setup_init(&d, m, variant, (float)jnum(cfg, "disp_lambda"), (float)jnum(cfg, "disp_tau"),
                    (float)jnum(cfg, "disp_eps"), blocks, nb, B);
    StepBatch sb;   // ops_cpu: the batch's device buffers are host memory the test reads directly
    step_batch_init(&sb, m, B);
    memcpy(sb.h_x, x, (size_t)B * n * 4);
    memcpy(sb.h_noise, noise, (size_t)B * n * 4);
    memcpy(sb.h_t, t, (size_t)B * 4);
    memcpy(sb.h_y, y, (size_t)B * sizeof(int));
    step_upload(&sb, m, B);
    objective_bind(&obj, m->ops, B);
    float *out = sb.out, *d_xt = malloc(B * n * 4);
    LossParts lp = step_loss_and_grads(m, &obj, &d, &sb, B, d_xt);
    CHECK(cmp(f, "out.xt", sb.xt, B * n, 1e-6, 1e-5), "%s: objective input x_t", name);
    CHECK(cmp(f, "out.target", sb.target, B * n, 1e-6, 1e-5), "%s: objective target", name);
    CHECK(cmp(f, "out.temb", m->a.t_emb, B * H, 1e-5, 1e-4), "%s: timestep embedding", name);
    CHECK(cmp(f, "out.c", m->a.c, B * H, 1e-5, 1e-4), "%s: conditioning", name);
    for (int k = 0; k < c.depth; k++) {
        char bn[32];
        snprintf(bn, sizeof bn, "out.block.%d", k);
        CHECK(cmp(f, bn, m->a.blk[k].out, (long)B * T * H, 1e-5, 1e-4), "%s: %s", name, bn);
    }
    CHECK(cmp(f, "out.model", out, B * nout, 1e-5, 1e-4), "%s: model output", name);
    CHECK(cmp(f, "loss.diff", &lp.diff, 1, 1e-6, 1e-5), "%s: diffusion loss", name);
    if (d.n_blocks) CHECK(cmp(f, "loss.disp", &lp.disp, 1, 1e-6, 1e-4), "%s: dispersive loss", name);
    CHECK(cmp(f, "loss.total", &lp.total, 1, 1e-6, 1e-5), "%s: total loss", name);
    int bad = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        if (!p->trainable) continue;
        char gn[128];
        snprintf(gn, sizeof gn, "grad.%s", p->name);
        if (!cmp(f, gn, m->grads + p->offset, p->numel, 1e-5, 1e-3)) bad++;
    }
    CHECK(bad == 0, "%s: %d parameter gradients differ from PyTorch", name, bad);
    CHECK(cmp(f, "grad.in.xt", d_xt, B * n, 1e-6, 1e-3), "%s: input gradient", name);
    // a few clipped AdamW steps + EMA on the same batch
    cJSON *ad = cJSON_GetObjectItem(cfg, "adamw");
    int steps = (int)jnum(ad, "steps");
    OptimState os;
    optim_init(&os, m);
    float losses[16], norms[16];
    for (int s = 0; s < steps; s++) {
        lp = step_loss_and_grads(m, &obj, &d, &sb, B, NULL);
        losses[s] = lp.total;
        norms[s] = optim_clip(m, (float)jnum(ad, "clip"));
        optim_adamw(m, &os, s, (float)jnum(ad, "lr"), (float)jnum(ad, "beta1"), (float)jnum(ad, "beta2"),
                    (float)jnum(ad, "eps"), (float)jnum(ad, "weight_decay"));
        optim_ema(m, &os, (float)jnum(cfg, "ema_decay"));
    }
    CHECK(cmp(f, "adamw.loss", losses, steps, 1e-5, 1e-4), "%s: losses during AdamW steps", name);
    CHECK(cmp(f, "adamw.gradnorm", norms, steps, 1e-5, 1e-4), "%s: gradient norms during AdamW steps", name);
    int bad_p = 0, bad_e = 0;
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        if (!p->trainable) continue;   // the twin writes trainable tensors only
        char pn[128];
        snprintf(pn, sizeof pn, "adamw.%s", p->name);
        if (!cmp(f, pn, m->params + p->offset, p->numel, 2e-5, 1e-3)) bad_p++;
        snprintf(pn, sizeof pn, "ema.%s", p->name);
        if (!cmp(f, pn, os.ema + p->offset, p->numel, 2e-5, 1e-3)) bad_e++;
    }
    CHECK(bad_p == 0, "%s: %d tensors differ after %d AdamW steps", name, bad_p, steps);
    CHECK(bad_e == 0, "%s: %d EMA tensors differ after %d steps", name, bad_e, steps);
    optim_free(&os, m);
    disp_setup_free(&d, m);
    free(d_xt);
    step_batch_free(&sb);
    objective_unbind(&obj);
    cJSON_Delete(cfg);
    dit_free(m);
    pca_free(pca);
    st_free(f);
}

// The public Dispersive Loss against the twin's float64 values, every variant.
static void run_dispersive(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/dispersive.safetensors", g_dir);
    StFile *f = st_load(path);
    cJSON *cases = cJSON_Parse(st_meta(f, "cases")), *cs;
    const char *variants[] = {"infonce_l2", "infonce_cos", "hinge", "covariance"};
    int n_cases = 0;
    cJSON_ArrayForEach(cs, cases) {
        int i = (int)jnum(cs, "i"), B = (int)jnum(cs, "B"), D = (int)jnum(cs, "D");
        char nm[64];
        snprintf(nm, sizeof nm, "z.%d", i);
        const StTensor *zt = st_find(f, nm);
        float *z = malloc(B * D * 4), *dz = malloc(B * D * 4), *ref = malloc(B * D * 4);
        for (long k = 0; k < (long)B * D; k++) z[k] = zt->dtype == ST_F64 ? (float)((const double *)zt->data)[k] : ((const float *)zt->data)[k];
        for (int v = 0; v < 4; v++) {
            float L = ddm_dispersive_loss(z, B, D, variants[v], (float)jnum(cs, "tau"), (float)jnum(cs, "eps"), dz);
            snprintf(nm, sizeof nm, "loss.%s.%d", variants[v], i);
            double Lref = *(const double *)st_find(f, nm)->data;
            snprintf(nm, sizeof nm, "grad.%s.%d", variants[v], i);
            const double *g = st_find(f, nm)->data;
            for (long k = 0; k < (long)B * D; k++) ref[k] = (float)g[k];
            double gmax = 0;
            for (long k = 0; k < (long)B * D; k++) gmax = fmax(gmax, fabs(ref[k]));
            CHECK(fabs(L - Lref) <= 1e-5 + 1e-4 * fabs(Lref), "dispersive %s case %d: %g vs PyTorch %g", variants[v], i, L, Lref);
            CHECK(close_enough(dz, ref, (long)B * D, 1e-4 * gmax + 1e-9, 1e-3, nm), "dispersive %s case %d gradient", variants[v], i);
        }
        free(z); free(dz); free(ref);
        n_cases++;
    }
    CHECK(n_cases > 0, "dispersive reference has cases");
    cJSON_Delete(cases);
    st_free(f);
}

int main(int argc, char **argv) {
    if (argc > 1) g_dir = argv[1];
    const char *cases[] = {"sit_cond", "sit_uncond_sigma", "dit_ddpm", "sit_cov", "sit_nodisp", "ldae",
                           "denoise_pixel", "denoise_pca_noise", "denoise_pca_latent", "denoise_pca_image",
                           "denoise_ldae_single"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(cases[i]);
    run_dispersive();
    TEST_MAIN_END();
}
