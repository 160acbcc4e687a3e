// Loading a model from a checkpoint for inference (sample, forward).
#pragma once
#include "nn/dit.h"
#include "train/train.h"

// Builds the model described by the checkpoint's config and loads its raw (ema = 0) or EMA weights.
// cfg receives the checkpoint's training config.
Dit *model_load(const char *ckpt, int ema, TrainConfig *cfg);
