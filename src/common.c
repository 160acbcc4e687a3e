#include "common.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// Temp files that must disappear if we die before committing them.
#define MAX_TEMPS 16
static char *g_temps[MAX_TEMPS];

static void temps_add(char *p) {
    for (int i = 0; i < MAX_TEMPS; i++) if (!g_temps[i]) { g_temps[i] = p; return; }
}
static void temps_remove(const char *p) {
    for (int i = 0; i < MAX_TEMPS; i++) if (g_temps[i] == p) g_temps[i] = NULL;
}
static void temps_unlink_all(void) {
    for (int i = 0; i < MAX_TEMPS; i++) if (g_temps[i]) { unlink(g_temps[i]); g_temps[i] = NULL; }
}

static const char *g_context, *g_tag = "";
static void (*g_before_exit)(void);
static volatile int g_dying;   // in ddm_fatal: a signal now (another rank's abort) ends the process quietly
void ddm_error_context(const char *prefix) { g_context = prefix; }
void ddm_fatal_hooks(const char *tag, void (*before_exit)(void)) { g_tag = tag; g_before_exit = before_exit; }
static void (*g_trap)(int);
static int g_trap_quiet;
void ddm_fatal_trap(void (*trap)(int is_bug), int quiet) { g_trap = trap; g_trap_quiet = quiet; }

void ddm_fatal(const char *fmt, ...) {
    if (g_trap) {
        if (!g_trap_quiet) {
            va_list ap;
            va_start(ap, fmt);
            fprintf(stderr, "ddm: error: %s", g_context ? g_context : "");
            vfprintf(stderr, fmt, ap);
            fprintf(stderr, "\n");
            va_end(ap);
        }
        temps_unlink_all();
        g_context = NULL;
        g_trap(0);
    }
    g_dying = 1;
    fflush(stdout);
    // Among several ranks, every one of them may hit the same error (a bad flag): rank 0's line is enough, so the
    // others wait a moment for its abort to end them, and speak only if it does not come (their own error).
    if (g_before_exit && strstr(g_tag, "[rank 0 ") != g_tag) sleep(2);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ddm: error: %s%s", g_tag, g_context ? g_context : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    temps_unlink_all();
    if (g_before_exit) g_before_exit();
    exit(1);
}

void ddm_bug(const char *file, int line, const char *fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ddm: internal error at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (g_trap) g_trap(1);   // the harness reports it as a finding (abort)
    temps_unlink_all();
    exit(2);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) ddm_fatal("out of memory allocating %zu bytes", n);
    return p;
}
void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ddm_fatal("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}
void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) ddm_fatal("out of memory reallocating %zu bytes", n);
    return q;
}
char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

FILE *xfopen(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) ddm_fatal("cannot open '%s' (%s): %s", path, mode[0] == 'r' ? "for reading" : "for writing",
                      strerror(errno));
    return f;
}

AtomicFile atomic_open(const char *path) {
    AtomicFile af;
    af.path = xstrdup(path);
    size_t n = strlen(path) + 32;
    af.tmp_path = xmalloc(n);
    snprintf(af.tmp_path, n, "%s.tmp.%d", path, (int)getpid());
    af.f = fopen(af.tmp_path, "wb");
    if (!af.f) ddm_fatal("cannot write '%s': %s", af.tmp_path, strerror(errno));
    temps_add(af.tmp_path);
    return af;
}

void atomic_commit(AtomicFile *af) {
    int bad = fflush(af->f) != 0 || ferror(af->f);
    if (!bad) bad = fsync(fileno(af->f)) != 0;
    bad |= fclose(af->f) != 0;
    af->f = NULL;
    if (bad) ddm_fatal("failed writing '%s': %s", af->path, strerror(errno));
    if (rename(af->tmp_path, af->path) != 0)
        ddm_fatal("cannot rename '%s' to '%s': %s", af->tmp_path, af->path, strerror(errno));
    temps_remove(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
}

void atomic_abort(AtomicFile *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    unlink(af->tmp_path);
    temps_remove(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
}

int atomic_remove_stale(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || t == e->d_name) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (*end || end == t + 5 || pid <= 0 || pid > INT32_MAX) continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) removed++;
        free(p);
    }
    closedir(d);
    return removed;
}

static const char *g_what = "";
static volatile int *g_flag;
static void on_interrupt(int sig) {
    if (g_dying) _exit(1);
    if (g_flag) { *g_flag = sig; return; }
    // async-signal-safe only: unlink, write, _exit
    for (int i = 0; i < MAX_TEMPS; i++) if (g_temps[i]) unlink(g_temps[i]);
    const char *a = "\nddm ", *b = ": interrupted\n";
    ssize_t ignored = write(2, a, strlen(a));
    ignored = write(2, g_what, strlen(g_what));
    ignored = write(2, b, strlen(b));
    (void)ignored;
    _exit(130);
}

void ddm_handle_interrupts(const char *what) {
    g_what = what;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void ddm_on_interrupt(volatile int *flag) { g_flag = flag; }

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int make_dirs(const char *path) {
    char buf[1024];
    if (strlen(path) >= sizeof buf) return -1;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {   // create each parent in turn, like mkdir -p
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}
