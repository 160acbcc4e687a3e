// The IDX reader's pieces shared by dataset_load_idx (dataset.h) and the IDX source of data.h.
#pragma once
#include <stdint.h>
#include "data/data_impl.h"

// A pixel byte as every ddm image loader scales it (the IDX loader's formula, kept bit for bit).
static inline float idx_pixel(unsigned char v) { return v / 255.0f * 2.0f - 1.0f; }

// An IDX images file (3-d unsigned bytes), held raw: memory-mapped when the file is not compressed,
// decompressed into memory when it is gzipped. Fatal on bad magic, zero sizes, truncation, trailing bytes.
typedef struct {
    uint32_t n, h, w;
    const unsigned char *pixels;   // [n, h, w]
    MappedFile map;
    unsigned char *owned;
} IdxImages;
void idx_images_open(const char *path, IdxImages *im);
void idx_images_close(IdxImages *im);
// The n_images label bytes of an IDX labels file (1-d unsigned bytes); fatal if the count differs.
unsigned char *idx_labels_read(const char *path, uint32_t n_images);
