// Timing of every op call, for `ddm bench`: ops_profile_wrap returns an Ops table that forwards to
// another one and adds each call's wall time to a per-op, per-phase counter.
#pragma once
#include "ops/ops.h"

typedef enum { PHASE_FORWARD, PHASE_BACKWARD, PHASE_OPTIMIZER, PHASE_COUNT } OpPhase;

typedef struct { const char *name; double seconds[PHASE_COUNT]; long calls[PHASE_COUNT]; } OpTiming;

const Ops *ops_profile_wrap(const Ops *inner);   // one profiled table per process
void ops_profile_phase(OpPhase p);               // no effect unless a profiled table is in use
void ops_profile_reset(void);
int ops_profile_report(OpTiming *out, int max);  // ops that were called, in table order
