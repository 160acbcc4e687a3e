// Shared by the fuzz harnesses (one per parser, tests/fuzz/fuzz_*.c). Each harness defines
// LLVMFuzzerTestOneInput; it is linked either with libFuzzer (clang -fsanitize=fuzzer: `make fuzz`) or with
// replay.c (gcc: a main() that feeds it files, for the regression inputs in `make test`).
//
// The parsers report bad input with ddm_fatal, which exits. Under a harness it longjmps back instead
// (ddm_fatal_trap), so a clean one-line error is a normal outcome and only a real crash, a sanitizer report,
// a DDM_BUG (abort) or a hang is a finding. What the parser had allocated before the error is not freed:
// leak detection is off in the fuzz runs for that reason (tests/fuzz/run.sh), and the descriptors and
// memory maps of the input file that an error path leaves open are closed here, so that a long run does
// not run out of them.
#pragma once
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"
#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jmp_buf fuzz_jump;
static int fuzz_fd_base = -1;   // descriptors below this one were open before the first input

static void fuzz_trap(int is_bug) {
    if (is_bug) abort();        // an internal error is a finding
    longjmp(fuzz_jump, 1);
}

// The directory for the input files: tmpfs when there is one (millions of small writes).
static const char *fuzz_dir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(dir, sizeof dir, "%s/ddm-fuzz-%d", base, (int)getpid());
        mkdir(dir, 0700);
    }
    return dir;
}

static void fuzz_setup(void) {
    if (fuzz_fd_base < 0) {
        fuzz_fd_base = open("/dev/null", O_RDONLY);  // the lowest free descriptor now
        close(fuzz_fd_base);
        ddm_fatal_trap(fuzz_trap, getenv("FUZZ_VERBOSE") == NULL);
    }
}

// Writes bytes to <fuzz_dir>/<name> and returns that path (static storage, one per name slot).
static const char *fuzz_write(const char *name, const uint8_t *data, size_t size) {
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ & 3];
    snprintf(p, 512, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) { perror(p); abort(); }
    return p;
}

// After an error: closes the descriptors opened since fuzz_setup and unmaps what maps our input files.
static inline void fuzz_cleanup(void) {
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                int fd = atoi(e->d_name);
                if (fd >= fuzz_fd_base && fd != self) close(fd);
            }
        closedir(d);
    }
    FILE *m = fopen("/proc/self/maps", "r");
    if (!m) return;
    char line[1024];
    const char *dir = fuzz_dir();
    unsigned long ranges[64][2];
    int n = 0;
    while (n < 64 && fgets(line, sizeof line, m))
        if (strstr(line, dir)) sscanf(line, "%lx-%lx", &ranges[n][0], &ranges[n][1]), n++;
    fclose(m);
    for (int i = 0; i < n; i++) munmap((void *)ranges[i][0], ranges[i][1] - ranges[i][0]);
}

// FUZZ_TRY { body } runs body; a ddm_fatal inside it returns here and cleans up.
#define FUZZ_TRY if (fuzz_setup(), setjmp(fuzz_jump) ? (fuzz_cleanup(), 0) : 1)

// Opens `path` as a data source of `format` (labels: a latents labels file or NULL) and reads up to `max` samples
// through data_get, as a training run would: for the harnesses of the data sources.
static inline void fuzz_read_source(const char *path, const char *format, const char *labels, int64_t max) {
    DataSpec spec;
    data_spec_defaults(&spec);
    snprintf(spec.path, sizeof spec.path, "%s", path);
    snprintf(spec.format, sizeof spec.format, "%s", format);
    if (labels) snprintf(spec.labels, sizeof spec.labels, "%s", labels);
    DataSource *d = data_open(&spec, "train", 1);
    float *x = xmalloc((size_t)d->c * d->h * d->w * sizeof(float));
    for (int64_t i = 0; i < d->n && i < max; i++) data_get(d, i, x);
    free(x);
    data_close(d);
}
