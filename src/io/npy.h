// NumPy .npy arrays (format versions 1.0, 2.0 and 3.0), read and written as float32 in C order.
#pragma once
#include <stddef.h>
#include <stdint.h>

// data: C order, npy_numel floats; descr: the file's dtype ("<f4", "|u1", ...) before the conversion.
typedef struct { int ndim; int64_t shape[8]; float *data; char descr[4]; } NpyArray;

// Accepts <f4, <f8, <i8, <i4, |u1, |i1 (converted to float32). Fatal on bad magic, fortran_order True,
// big-endian or other dtypes, more than 8 dimensions, truncated data or trailing bytes.
NpyArray npy_load_f32(const char *path);
// The same for a .npy held in memory (e.g. a member of a .npz); `what` names it in error messages.
NpyArray npy_parse_f32(const unsigned char *buf, size_t size, const char *what);
int64_t npy_numel(const NpyArray *a);
void npy_free(NpyArray *a);
// Atomic; version 1.0, dtype '<f4', header padded so the data starts at a multiple of 64.
void npy_save_f32(const char *path, int ndim, const int64_t *shape, const float *data);

// The header alone: dtype (one of npy_load_f32's), shape, and where the C-order data start in the file,
// for arrays that are memory-mapped instead of loaded. Fatal on the header errors npy_load_f32 reports;
// data_bytes = numel * item_size, overflow-checked. buf needs only the file's first bytes (the header).
typedef struct { int ndim; int64_t shape[8]; char descr[4]; int item_size; size_t data_offset; uint64_t data_bytes; } NpyHeader;
NpyHeader npy_parse_header(const unsigned char *buf, size_t size, const char *what);
