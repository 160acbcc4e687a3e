// safetensors as a checkpoint: the header (JSON, dtypes, shapes, offsets, overlaps), then what a command does
// with a checkpoint before allocating a model from it: the "config" metadata through the field table
// (train_config_from_json: types, ranges, cross-field rules), the shape check of every parameter, the embedded
// PCA tokenizer, the step and the recorded dataset.
#include "fuzz.h"
#include "config/config.h"
#include "data/data.h"
#include "model/checkpoint.h"
#include "tok/pca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("in.safetensors", data, size);
    StFile *volatile f = NULL;
    FUZZ_TRY {
        f = checkpoint_open(path);
        for (int i = 0; i < f->n; i++) {
            const StTensor *t = st_find(f, f->tensors[i].name);
            if (t != &f->tensors[i]) abort();   // names are unique: lookup finds each one itself
            if (t->dtype == ST_F32) st_get_f32(f, t->name, t->ndim, t->shape);
        }
        checkpoint_step(f);
        const char *ds = st_meta(f, "dataset");
        DataSpec spec;
        data_spec_defaults(&spec);
        if (ds) data_spec_from_description(ds, &spec);
        Pca *pca = checkpoint_pca(f);
        if (pca) pca_free(pca);
        TrainConfig cfg;
        if (train_config_from_json(&cfg, checkpoint_config(f), path)) {
            checkpoint_check_shapes(f, &cfg.model, "");
            checkpoint_check_shapes(f, &cfg.model, "ema.");
        }
    }
    if (f) st_free(f);
    return 0;
}
