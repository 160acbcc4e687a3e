// ddm export: a checkpoint's weights alone, as the safetensors file PyTorch's load_state_dict takes for the
// official DiT / SiT module (facebookresearch/DiT models.py, willisma/SiT models.py): the state-dict names
// and layouts of SPEC §2, float32, pos_embed included (it is a frozen Parameter there), no ema./opt./pca.
// prefixes. With --ema the EMA weights are written under the plain names.
//
//   from safetensors.torch import load_file     # or tools/st.py: st.load(path)[0]
//   model = DiT_models["DiT-XL/2"](input_size=32, num_classes=1000); model.load_state_dict(load_file(path))
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config/args.h"
#include "cli/cli.h"
#include "common.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "model/model_load.h"

// "DiT-XL/2"-style name of a standard variant, or "" (for the message only).
static void variant_name(const DitConfig *c, const char *objective, char *buf, size_t cap) {
    static const struct { const char *v; int depth, hidden, heads; } vs[] = {
        {"S", 12, 384, 6}, {"B", 12, 768, 12}, {"L", 24, 1024, 16}, {"XL", 28, 1152, 16}};
    buf[0] = 0;
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
        if (vs[i].depth == c->depth && vs[i].hidden == c->hidden && vs[i].heads == c->heads)
            snprintf(buf, cap, "%s-%s/%d", strcmp(objective, "ddpm") ? "SiT" : "DiT", vs[i].v, c->patch);
}

int cmd_export(int argc, char **argv) {
    char ckpt[1024] = "", out[1024] = "";
    int ema = 0;
    ArgSpec specs[] = {
        {"ckpt", ARG_STR, ckpt, sizeof ckpt, 0, 0, "ddm checkpoint (.safetensors)", 0, NULL},
        {"out", ARG_STR, out, sizeof out, 0, 0, "weights-only safetensors for PyTorch's load_state_dict", 0, NULL},
        {"ema", ARG_BOOL, &ema, 0, 0, 1, "write the EMA weights (under the plain names) instead of the raw ones", 0, NULL},
    };
    ArgParser ap = {"export", "Write a checkpoint's weights as safetensors that the official DiT/SiT PyTorch module loads "
                    "with load_state_dict (strict).", specs, sizeof specs / sizeof specs[0]};
    args_parse(&ap, argc, argv);
    if (!ckpt[0]) ddm_fatal("ddm export needs --ckpt");
    if (!out[0]) ddm_fatal("ddm export needs --out");
    TrainConfig cfg;
    Dit *m = model_load(ckpt, ema, &ops_cpu, &cfg);   // checks every tensor's presence and shape against the config
    const DitConfig *c = &m->cfg;
    float *host = xmalloc(m->total * sizeof(float));
    ops_download_f32(m->ops, host, m->params, m->total);
    StWriter *w = st_writer_new();
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo *p = &m->info[i];
        st_writer_add(w, p->name, ST_F32, p->ndim, p->shape, host + p->offset);
    }
    // "format": "pt" is what Hugging Face's safetensors.torch writes. model_args uses the official constructor's
    // argument names (DiT(input_size, patch_size, in_channels, hidden_size, depth, num_heads, mlp_ratio,
    // num_classes, learn_sigma)), not the keys of ddm's own config JSON: it says what to build in PyTorch.
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "depth", c->depth);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden);
    cJSON_AddNumberToObject(o, "num_heads", c->heads);
    cJSON_AddNumberToObject(o, "patch_size", c->patch);
    cJSON_AddNumberToObject(o, "in_channels", c->in_channels);
    cJSON_AddNumberToObject(o, "input_size", c->height);
    cJSON_AddNumberToObject(o, "num_classes", c->num_classes);
    cJSON_AddBoolToObject(o, "learn_sigma", c->learn_sigma);
    cJSON_AddNumberToObject(o, "mlp_ratio", c->mlp_ratio);
    char *args = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char name[32];
    variant_name(c, cfg.objective, name, sizeof name);
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "model_args", args);
    if (name[0]) st_writer_meta(w, "model", name);
    st_writer_meta(w, "objective", cfg.objective);
    st_writer_meta(w, "weights", ema ? "ema" : "raw");
    st_writer_meta(w, "exported_from", ckpt);
    st_writer_write(w, out);
    st_writer_free(w);
    fprintf(stderr, "ddm export: %s (%s weights) -> %s: %d tensors%s%s\n", ckpt, ema ? "EMA" : "raw", out, m->n_params,
            name[0] ? ", the architecture of " : "", name);
    if (c->height != c->width)
        fprintf(stderr, "ddm export: warning: %dx%d inputs: the official module builds square inputs (input_size) only\n",
                c->height, c->width);
    if (c->num_classes == 0)
        fprintf(stderr, "ddm export: warning: an unconditional model has no y_embedder: the official module always has "
                "one (load with strict=False)\n");
    if (strcmp(cfg.objective, "ldae") == 0 || strcmp(cfg.objective, "denoise") == 0)
        fprintf(stderr, "ddm export: note: the %s objective's PCA tokenizer is not part of the module's state dict\n",
                cfg.objective);
    free(args);
    free(host);
    dit_free(m);
    return 0;
}
