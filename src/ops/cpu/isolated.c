// cpu-isolated: the CPU backend behind a wall, for tests. Its device pointers are the CPU's pointers plus a
// tag that makes them non-canonical on x86-64 (bit 62 set), so the host cannot dereference them: any host code
// that reads or writes device memory other than through `upload` / `download` crashes at once, and so does any
// op handed a host pointer. Only this table's ops remove the tag (DEV below) before calling the CPU kernels, so
// results are bit-identical to the `cpu` table's (the CLI tests run on both). Generated from ops.h's op list.
#include <stdint.h>
#include "ops/cpu/cpu_kernels.h"
#include "ops/ops_internal.h"

#define ISO_TAG ((uintptr_t)1 << 62)

static void *iso_tag(void *p) { return p ? (void *)((uintptr_t)p + ISO_TAG) : NULL; }
static void *iso_untag(const void *p) {
    if (!p) return NULL;
    if (!((uintptr_t)p & ISO_TAG)) DDM_BUG("cpu-isolated: an op was given a host pointer %p, not device memory", p);
    return (void *)((uintptr_t)p - ISO_TAG);
}
#define ISO_DEV(p) ((__typeof__(p))iso_untag(p))

static void *iso_alloc(size_t bytes) { return iso_tag(ops_cpu.alloc(bytes)); }
static void iso_free(void *p) { ops_cpu.free(iso_untag(p)); }
static double iso_sumsq(const float *x, size_t n) { return ops_cpu.sumsq(ISO_DEV(x), n); }

#define REAL float
#define ISO_FP32(name, params, args) static void iso_##name params { ops_cpu.name args; }
#define ISO_BF16(name, params, args) static void iso_bf16_##name params { ops_cpu_bf16.name args; }
DDM_OPS(ISO_FP32, ISO_DEV)
DDM_OPS(ISO_BF16, ISO_DEV)
#define ISO_ENTRY(name, params, args) .name = iso_##name,
#define ISO_BF16_ENTRY(name, params, args) .name = iso_bf16_##name,
#undef REAL

#define ISO_COMMON .device = "cpu-isolated", .alloc = iso_alloc, .free = iso_free, .sumsq = iso_sumsq
const Ops ops_cpu_isolated = {.name = "cpu-isolated", .precision = "fp32", ISO_COMMON,
                              .attention_saved_floats = cpu_attention_saved, DDM_OPS(ISO_ENTRY, DDM_OP_NO_D)};
const Ops ops_cpu_isolated_bf16 = {.name = "cpu-isolated-bf16", .precision = "bf16", ISO_COMMON,
                                   .attention_saved_floats = cpu_attention_saved, DDM_OPS(ISO_BF16_ENTRY, DDM_OP_NO_D)};
