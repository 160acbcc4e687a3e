// Declarations shared by the backends and the device selection (src/ops only).
#pragma once
#include <stddef.h>
#include "common.h"
#include "ops/ops.h"

extern const Ops ops_cpu_isolated;        // cpu-isolated over ops_cpu (src/ops/cpu/isolated.c)
extern const Ops ops_cpu_isolated_bf16;   // cpu-isolated over ops_cpu_bf16
size_t cpu_attention_saved(int B, int T, int C, int NH);   // the CPU attention's saved statistics
#ifdef DDM_CUDA
// The CUDA tables (src/ops/cuda): NULL with *err set when no GPU is usable or the precision is unknown.
const Ops *ops_cuda_select(const char *precision, const char **err);
#endif
