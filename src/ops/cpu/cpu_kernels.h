// The CPU backend's kernels by name: cpu_<op> (float, in the ops tables) and <op>_f64 (the same layer kernels
// in double, for the finite-difference gradient tests). Declared from ops.h's op list, so their signatures are
// the table's with REAL = float or double; only the transformer-layer kernels (kernels.inc) have an _f64 twin.
#pragma once
#include "ops/ops.h"

#define DDM_CPU_DECLARE_F32(name, params, args) void cpu_##name params;
#define DDM_CPU_DECLARE_F64(name, params, args) void name##_f64 params;
#pragma push_macro("REAL")
#undef REAL
#define REAL float
DDM_OPS(DDM_CPU_DECLARE_F32, DDM_OP_NO_D)
#undef REAL
#define REAL double
DDM_OPS(DDM_CPU_DECLARE_F64, DDM_OP_NO_D)
#pragma pop_macro("REAL")
#undef DDM_CPU_DECLARE_F32
#undef DDM_CPU_DECLARE_F64
