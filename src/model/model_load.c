#include "model/model_load.h"
#include "common.h"
#include "model/checkpoint.h"

Dit *model_load(const char *ckpt, int ema, const Ops *ops, TrainConfig *cfg) {
    StFile *f = checkpoint_open(ckpt);
    if (!train_config_from_json(cfg, checkpoint_config(f), ckpt))
        ddm_fatal("%s: its \"config\" metadata does not describe a valid model", ckpt);
    checkpoint_check_shapes(f, &cfg->model, ema ? "ema." : "");
    Dit *m = dit_create(&cfg->model, ops);
    if (!checkpoint_load_tensors(f, m, ema ? "ema." : "", m->params, ema))
        ddm_fatal("%s: has no EMA weights (ema.*); drop --ema to use the raw weights", ckpt);
    st_free(f);
    return m;
}
