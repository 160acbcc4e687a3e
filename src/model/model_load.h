// Loading a model from a checkpoint for inference (sample, forward, probe, eval, the public API).
#pragma once
#include "config/config.h"
#include "nn/dit.h"

// Builds the model described by the checkpoint's config on the device of `ops` and loads its raw (ema = 0) or
// EMA weights. cfg receives the checkpoint's training config (validated: config/config.h). The file must hold
// every parameter at the config's shapes: checked before the model's memory is allocated.
Dit *model_load(const char *ckpt, int ema, const Ops *ops, TrainConfig *cfg);
