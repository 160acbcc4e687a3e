// TensorBoard event files (SPEC §4), written without TensorFlow: events.out.tfevents.<unix time>.<host> in a
// run directory, one TFRecord per Event — u64 length, u32 masked CRC-32C of the length, the payload, u32
// masked CRC-32C of the payload — with the Event / Summary / Summary.Value / Summary.Image protobuf messages
// encoded by hand (a handful of fields; see tfevents.c). TensorBoard reads scalars (Value.simple_value) and
// PNG images (Value.image) from it.
//
// Every write is checked: an I/O error (disk full, a directory that cannot be written) is a one-line fatal
// error naming the file. Records are written whole; scalars reach the file at tfevents_flush (or
// tfevents_log_json, an image, tfevents_close), so a TensorBoard watching the run sees whole events.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct TfEvents TfEvents;

// Creates dir's event file and writes its first event (file_version "brain.Event:2"). start_step > 0 (a
// resumed run) also writes SessionLog START at that step, which tells TensorBoard to drop the events of the
// earlier files at that step and after (those a crash left past the checkpoint the run resumed from).
TfEvents *tfevents_open(const char *dir, int64_t start_step);
const char *tfevents_path(const TfEvents *t);

// One scalar (Value.simple_value) under tag at step.
void tfevents_scalar(TfEvents *t, const char *tag, int64_t step, float value);
// One image, already PNG-encoded, of height x width pixels; colorspace 1 = grey, 3 = RGB, 4 = RGBA.
void tfevents_image_png(TfEvents *t, const char *tag, int64_t step, const unsigned char *png, size_t len, int height,
                        int width, int colorspace);
// n images [n, c, h, w] (c = 1 or 3) as one grid, as `ddm sample` lays it out (ncols columns, values lo..hi
// mapped to 0..255), encoded as PNG: the periodic sample grid of a training run.
void tfevents_image_grid(TfEvents *t, const char *tag, int64_t step, const float *imgs, int n, int c, int h, int w,
                         int ncols, float lo, float hi);
// Every number of one log.jsonl line ({"step": S, "loss": ..., ...}) as a scalar at step S, tagged prefix + key
// ("step" itself, strings, nulls and non-finite numbers are skipped). Returns the scalars written, or -1 if the
// line is not a JSON object with a numeric "step" (nothing written). One call after each line a run logs.
int tfevents_log_json(TfEvents *t, const char *line, const char *prefix);
void tfevents_flush(TfEvents *t);
void tfevents_close(TfEvents *t);   // flushes, closes, frees; NULL is ignored

// CRC-32C (Castagnoli) of n bytes, and TFRecord's mask of it: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t tfevents_crc32c(const void *data, size_t n);
uint32_t tfevents_masked_crc(const void *data, size_t n);
