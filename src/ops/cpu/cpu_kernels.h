// The CPU backend's kernels and its instruction-set levels. cpu_ops.c is compiled once per x86-64 level of
// DDM_CPU_ISAS (the Makefile's CPU_ISAS: -march=x86-64-<level> -DCPU_ISA=<level>) into the tables
// ops_cpu_<level> and ops_cpu_bf16_<level>, its op `name` the function cpu_<level>_name; cpu_dispatch.c, built
// for the baseline like the rest of the program, chooses one level at start-up (ops_cpu_table). The layer
// kernels (kernels.inc) also have a double twin <op>_f64 for the finite-difference gradient tests, compiled
// once (cpu_dispatch.c); its signatures are the op list's with REAL = double.
#pragma once
#include "ops/ops.h"

// X(level, the __builtin_cpu_supports / -march name, what it adds): lowest first. The baseline level is
// x86-64-v2 (SSE4.2: rounding instructions for the vectorised exp); below it the CPU ops refuse to run.
#define DDM_CPU_ISAS(X)                                       \
    X(v2, "x86-64-v2", "SSE4.2")                              \
    X(v3, "x86-64-v3", "AVX2, FMA")                           \
    X(v4, "x86-64-v4", "AVX-512")

#define DDM_CPU_DECLARE_TABLES(level, arch, what) extern const Ops ops_cpu_##level, ops_cpu_bf16_##level;
DDM_CPU_ISAS(DDM_CPU_DECLARE_TABLES)
#undef DDM_CPU_DECLARE_TABLES

#define DDM_CPU_DECLARE_F64(name, params, args) void name##_f64 params;
#pragma push_macro("REAL")
#undef REAL
#define REAL double
DDM_OPS(DDM_CPU_DECLARE_F64, DDM_OP_NO_D)
#pragma pop_macro("REAL")
#undef DDM_CPU_DECLARE_F64
