// Shared helpers: error reporting that names file and line, checked allocation and file I/O,
// and the atomic-write protocol (temp file, then rename) used for every output ddm writes.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

// A user-facing failure: prints "ddm: error: <message>" on one line and exits with status 1.
// Temp files registered with tmpfile_register are removed first, so nothing half-written is left.
void ddm_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
// While set (not NULL), ddm_fatal's line starts with this text: what was being read, e.g. "ckpt.safetensors:
// config: ", so that checks written for the command line name the file a bad value came from.
void ddm_error_context(const char *prefix);
// For a process among several (src/dist): `tag` starts every error line (e.g. "[rank 1 of 2] ") and `before_exit`
// runs instead of a plain exit (e.g. MPI_Abort, which ends every rank).
void ddm_fatal_hooks(const char *tag, void (*before_exit)(void));
// For the fuzz harnesses (tests/fuzz): while set, ddm_fatal and DDM_BUG call trap(is_bug) instead of exiting (the
// trap longjmps back into the harness: a clean error is not a crash) and print nothing if quiet. NULL: exit again.
void ddm_fatal_trap(void (*trap)(int is_bug), int quiet);
// A programming error (should never happen): also prints the source file and line.
#define DDM_BUG(...) ddm_bug(__FILE__, __LINE__, __VA_ARGS__)
void ddm_bug(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
#define DDM_ASSERT(cond) do { if (!(cond)) DDM_BUG("assertion failed: %s", #cond); } while (0)

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
FILE *xfopen(const char *path, const char *mode); // fatal with the path and strerror on failure

// Atomic output: atomic_open writes to "<path>.tmp.<pid>"; atomic_commit fsyncs, closes and renames it
// over path; atomic_abort closes and deletes it. The temp path stays registered (and is deleted by
// ddm_fatal) until commit or abort.
typedef struct { FILE *f; char *path; char *tmp_path; } AtomicFile;
AtomicFile atomic_open(const char *path);
void atomic_commit(AtomicFile *af);
void atomic_abort(AtomicFile *af);
// Removes the temp files "<name>.tmp.<pid>" in dir that a killed writer left (SIGKILL, power loss: nothing ran to
// delete them), those whose pid is no live process on this machine; returns how many. A live pid's file may be
// another writer's work in progress, so it stays.
int atomic_remove_stale(const char *dir);

// SIGINT and SIGTERM from the start of a command: the registered temp files are removed and the process exits
// with status 130 after one line "ddm <what>: interrupted". ddm_on_interrupt(flag) switches to a graceful mode
// instead (the signal only sets *flag, e.g. for the training loop to save a checkpoint); NULL switches back.
void ddm_handle_interrupts(const char *what);
void ddm_on_interrupt(volatile int *flag);

double now_seconds(void); // monotonic clock
int file_exists(const char *path);
int make_dirs(const char *path);   // mkdir -p; 0 on success
