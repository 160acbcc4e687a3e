// Sample quality during training (`ddm train --eval-every N`): every N steps the EMA weights draw
// --eval-n samples (Heun ODE, --eval-steps steps, no guidance, classes cycled, the same noise each
// time so the curve compares like with like; `ddm eval --ckpt --seed SEED` reproduces the last one) and their Fréchet distance to a fixed draw of training
// images is measured in the domain classifier's features (FD-CNN, as `ddm eval`). The result goes to
// log.jsonl as {"step":N,"fd":...}, ready for `ddm plot --y fd`.
#pragma once
#include "data/data.h"
#include "nn/dit.h"
#include "config/config.h"

typedef struct TrainEval TrainEval;

// NULL when c->eval_every is 0. Loads the classifier, checks it fits the data and the objective (one-line
// errors) and computes the reference features once.
TrainEval *train_eval_create(const TrainConfig *c, DataSource *train_data);
// Runs one evaluation of model m with the EMA weights `ema` (model layout); m's own weights are restored. The first
// grid_n samples (at most eval_n) are copied into grid [grid_n, C, H, W] when grid is not NULL.
double train_eval_fd(TrainEval *e, Dit *m, const float *ema, const TrainConfig *c, float *grid, int grid_n);
void train_eval_free(TrainEval *e);
