// The training loop: data -> objective -> model -> (Dispersive Loss) -> backward -> clip -> AdamW -> EMA,
// with logging, atomic checkpoints and bit-exact resume. The run is described by a TrainConfig (config/config.h).
#pragma once
#include "config/config.h"

// Runs training; returns 0 on success (130 when interrupted, after saving a checkpoint). Fatal (exit 1) on bad
// input or a non-finite loss.
int train_run(TrainConfig *c);
