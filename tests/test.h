// Minimal test harness: CHECK records a failure and goes on; each binary ends with the line
// "N passed, N failed" and exits non-zero if anything failed.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int t_pass = 0, t_fail = 0;

#define CHECK(cond, ...) do { \
    if (cond) t_pass++; \
    else { t_fail++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } \
} while (0)

// Largest |a-b| / (atol + rtol*|b|) over n elements must be <= 1.
static inline int close_enough(const float *a, const float *b, long n, double atol, double rtol,
                               const char *what) {
    double worst = 0; long wi = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(d <= worst)) { worst = d; wi = i; }
    }
    if (!(worst <= 1.0)) {
        fprintf(stderr, "  %s: worst at %ld: got %.8g want %.8g (ratio %.3g)\n", what, wi, a[wi], b[wi], worst);
        return 0;
    }
    return 1;
}

// Central differences (step h) of loss w.r.t. every entry of x against the analytic gradient g:
// |num - g| <= atol + rtol |num| everywhere (float64 gradient checks).
typedef double (*LossFn)(void *ctx);
static inline int fd_check_tol(LossFn loss, void *ctx, double *x, const double *g, long n, const char *what,
                               double h, double atol, double rtol) {
    double worst = 0;
    for (long i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + h; double lp = loss(ctx);
        x[i] = keep - h; double lm = loss(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2 * h), err = fabs(num - g[i]) / (atol + rtol * fabs(num));
        if (err > worst) worst = err;
    }
    if (worst > 1) fprintf(stderr, "  %s: finite-difference mismatch ratio %.3g\n", what, worst);
    return worst <= 1;
}

#define TEST_MAIN_END() do { printf("%s: %d passed, %d failed\n", __FILE__, t_pass, t_fail); return t_fail ? 1 : 0; } while (0)
