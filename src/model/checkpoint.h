// Checkpoints as safetensors: the model under its plain DiT/SiT state-dict names and PyTorch layouts,
// the EMA under "ema.", AdamW moments under "opt.m." / "opt.v."; metadata holds "config" (JSON),
// "step", "seed" and "rng" (the RNG is re-derived from seed and step). Written atomically. One of the named
// places where tensors cross between host and device: saving downloads them, loading uploads them.
#pragma once
#include <stdint.h>
#include "io/safetensors.h"
#include "nn/dit.h"
#include "tok/pca.h"

typedef struct {
    const Dit *model;
    const float *ema, *opt_m, *opt_v;   // device buffers with the model's layout, NULL to omit
    int64_t step;
    uint64_t seed;
    const char *config_json;
    const Pca *pca;                     // l-DAE: the tokenizer, embedded (pca.* tensors and metadata), or NULL
    const char *dataset_json;           // the training data's description (data_describe_json), metadata "dataset"
} CheckpointOut;

void checkpoint_save(const char *path, const CheckpointOut *c);

StFile *checkpoint_open(const char *path);                 // fatal with a clear line if unreadable
const char *checkpoint_config(const StFile *f);            // "config" metadata; fatal if absent
int64_t checkpoint_step(const StFile *f);                   // "step" metadata (0 if absent; else 0..TRAIN_MAX_STEPS)
// The embedded PCA tokenizer (tensors pca.mean / pca.basis / pca.eigenvalues, metadata pca.patch,
// pca.channels, pca.d, pca.centered, pca.whitened), or NULL if the checkpoint has none.
Pca *checkpoint_pca(const StFile *f);
// Fatal (one line) unless f holds every parameter of a model of cfg, named prefix + name, as F32 at its shape
// (an absent optional prefix set passes): called before a model's memory is allocated from a file's config.
void checkpoint_check_shapes(const StFile *f, const DitConfig *cfg, const char *prefix);
// Loads every tensor of m's registry, named prefix + name, into dst (device, model layout).
// Fatal if one is missing or misshapen; if optional and the first is absent, returns 0 untouched.
int checkpoint_load_tensors(const StFile *f, const Dit *m, const char *prefix, float *dst, int optional);
