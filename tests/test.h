// Minimal test harness: CHECK records a failure and goes on; each binary ends with the line
// "N passed, N failed" and exits non-zero if anything failed.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

// Runs fn in a child process with its stderr captured into msg (NUL-terminated); returns the child's
// exit status, or -1 if it did not exit normally. For checking that user errors exit(1) with one line.
static inline int run_in_child(void (*fn)(void), char *msg, size_t cap) {
    int p[2];
    if (pipe(p) != 0) return -2;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        fn();
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t k;
    while (len + 1 < cap && (k = read(p[0], msg + len, cap - 1 - len)) > 0) len += (size_t)k;
    msg[len] = 0;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define TEST_MAIN_END() do { printf("%s: %d passed, %d failed\n", __FILE__, t_pass, t_fail); return t_fail ? 1 : 0; } while (0)
