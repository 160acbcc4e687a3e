// Shared by the dataset formats behind data.h: the openers, and the helpers every size read from a file
// goes through (checked multiplication, a bound before allocating, memory-mapped files, sorted listings).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "data/data.h"

DataSource *data_open_idx(const DataSpec *s, const char *split, int whole_ok);
DataSource *data_open_cifar(const DataSpec *s, const char *split, int whole_ok);
DataSource *data_open_imagefolder(const DataSpec *s, const char *split, int whole_ok);
DataSource *data_open_latents(const DataSpec *s, const char *split, int whole_ok);

// A zeroed source with format, path and split set; close frees impl with free() unless replaced.
DataSource *data_source_new(const char *format, const char *path, const char *split);

// Sets d->detail (printf-style; cut at its size).
void data_set_detail(DataSource *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// a * b, fatal ("<what>: ... is too large") if it overflows uint64 or exceeds limit.
uint64_t data_mul(uint64_t a, uint64_t b, uint64_t limit, const char *what);
// Bytes of memory a command may hold at once: 3/4 of the physical memory.
uint64_t data_memory_bound(void);

// A whole file mapped read-only (len 0 maps nothing). Fatal, naming the file, if it cannot be opened.
typedef struct { const unsigned char *p; size_t len; } MappedFile;
MappedFile data_map_file(const char *path);
void data_unmap_file(MappedFile *m);

// Names in dir (not "." and ".."), sorted by strcmp (byte order = Python's sorted() on UTF-8 names).
// kind: 'd' directories only, 'f' everything else, 0 all. NULL-terminated, caller frees with data_free_list.
char **data_list_dir(const char *dir, int kind, int *count);
void data_free_list(char **names);
int data_is_dir(const char *path);
int data_has_suffix(const char *s, const char *suffix);   // case-insensitive
// "<a>/<b>" (malloc'd).
char *data_join(const char *a, const char *b);

// "0.18215" or "a,b,c": one value for every channel, or one per channel; fatal naming flag otherwise.
void data_parse_channels(const char *s, int c, float dflt, float *out, const char *flag);

// The split a file or folder name announces: "train", "test" ("test", "t10k", "val") or NULL.
const char *data_split_of_name(const char *name);
