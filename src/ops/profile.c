// The profiled table: every op of another table, timed (wall clock around a synchronised call, so a
// backend that returns before its work is done is timed by its work). Generated from ops.h's op list.
#include "ops/profile.h"
#include <string.h>
#include "common.h"

#define PROFILE_ID(name, params, args) P_##name,
enum { DDM_OPS(PROFILE_ID, DDM_OP_NO_D) P_SUMSQ, P_N };
#define PROFILE_NAME(name, params, args) #name,
static const char *names[P_N] = {DDM_OPS(PROFILE_NAME, DDM_OP_NO_D) "sumsq"};

static const Ops *g_inner;
static Ops g_table;
static OpPhase g_phase;
static double g_sec[P_N][PHASE_COUNT];
static long g_calls[P_N][PHASE_COUNT];

static void account(int id, double t0) {
    g_inner->synchronize();
    g_sec[id][g_phase] += now_seconds() - t0;
    g_calls[id][g_phase]++;
}

#define REAL float
#define PROFILE_WRAP(name, params, args) \
    static void w_##name params { double t0_ = now_seconds(); g_inner->name args; account(P_##name, t0_); }
DDM_OPS(PROFILE_WRAP, DDM_OP_NO_D)
#undef REAL
static double w_sumsq(const float *x, size_t n) {
    double t0 = now_seconds(), r = g_inner->sumsq(x, n);
    account(P_SUMSQ, t0);
    return r;
}

#define PROFILE_ENTRY(name, params, args) g_table.name = w_##name;
const Ops *ops_profile_wrap(const Ops *inner) {
    g_inner = inner;

    g_table = *inner;
    g_table.name = "profiled";
    g_table.sumsq = w_sumsq;
    DDM_OPS(PROFILE_ENTRY, DDM_OP_NO_D)
    ops_profile_reset();
    return &g_table;
}

void ops_profile_phase(OpPhase p) { g_phase = p; }

void ops_profile_reset(void) {
    memset(g_sec, 0, sizeof g_sec);
    memset(g_calls, 0, sizeof g_calls);
    g_phase = PHASE_FORWARD;
}

int ops_profile_report(OpTiming *out, int max) {
    int n = 0;
    for (int i = 0; i < P_N && n < max; i++) {
        long calls = 0;
        for (int p = 0; p < PHASE_COUNT; p++) calls += g_calls[i][p];
        if (!calls) continue;
        out[n].name = names[i];
        for (int p = 0; p < PHASE_COUNT; p++) { out[n].seconds[p] = g_sec[i][p]; out[n].calls[p] = g_calls[i][p]; }
        n++;
    }
    return n;
}
