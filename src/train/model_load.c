#include "train/model_load.h"
#include "common.h"
#include "train/checkpoint.h"

Dit *model_load(const char *ckpt, int ema, TrainConfig *cfg) {
    StFile *f = checkpoint_open(ckpt);
    if (!train_config_from_json(cfg, checkpoint_config(f)))
        ddm_fatal("%s: its \"config\" metadata does not describe a valid model", ckpt);
    Dit *m = dit_create(&cfg->model, &ops_cpu);
    if (!checkpoint_load_tensors(f, m, ema ? "ema." : "", m->params, ema))
        ddm_fatal("%s: has no EMA weights (ema.*); drop --ema to use the raw weights", ckpt);
    st_free(f);
    return m;
}
