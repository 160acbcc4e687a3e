// safetensors: the checkpoint format PyTorch/HF tools read. Layout: u64 little-endian header length N,
// N bytes of JSON ({"__metadata__": {str: str}, name: {dtype, shape, data_offsets}}), then the raw
// little-endian byte buffer that data_offsets index into.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F64, ST_F16, ST_BF16, ST_I64, ST_I32, ST_U8 } StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[8];
    size_t nbytes;
    const void *data; // points into StFile.buf; aligned to the dtype size
} StTensor;

typedef struct {
    char *path;
    void *buf;   // the byte buffer that follows the header (re-laid-out with padding if the file had
    size_t size; // tensors unaligned for their dtype); its length in bytes
    int n;
    StTensor *tensors; // in header order
    int *by_name;      // tensor indices sorted by name: st_find is a binary search (a crafted header with many
                       // tensors must not make lookups, or the duplicate check, quadratic)
    int n_meta;
    char **meta_keys;
    char **meta_values;
} StFile;

const char *st_dtype_name(StDtype dt); // "F32", "BF16", ...
size_t st_dtype_size(StDtype dt);

// Reads the whole file; fatal on any inconsistency (header length > file, bad JSON, unknown dtype,
// offsets out of range, overlapping, or not matching shape * dtype size).
StFile *st_load(const char *path);
const StTensor *st_find(const StFile *f, const char *name); // NULL if absent
const char *st_meta(const StFile *f, const char *key);      // NULL if absent
// A float32 tensor with exactly this shape, else fatal naming the file, tensor, and what was expected.
const float *st_get_f32(const StFile *f, const char *name, int ndim, const int64_t *shape);
void st_free(StFile *f);

typedef struct StWriter StWriter;
StWriter *st_writer_new(void);
// data is borrowed until st_writer_write; tensors are written in insertion order.
void st_writer_add(StWriter *w, const char *name, StDtype dt, int ndim, const int64_t *shape, const void *data);
void st_writer_meta(StWriter *w, const char *key, const char *value); // key and value are copied
void st_writer_write(StWriter *w, const char *path); // atomic; header padded with spaces to a multiple of 8
void st_writer_free(StWriter *w);
