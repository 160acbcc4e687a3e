// One interface for every dataset ddm reads (issue 15): MNIST-like IDX directories, ImageFolder trees of
// PNG/JPEG, CIFAR-10/100 binary batches, and precomputed latents (.npy/.npz arrays, or fast-DiT's
// directories of per-sample .npy files).
//
// A DataSource is an indexed, read-only collection of samples [C, H, W] (float) with optional integer
// labels. Pixels arrive in [-1, 1] as v / 255 * 2 - 1 (the IDX loader's formula, so Fashion-MNIST runs
// stay bit-identical); latents arrive as (v - shift[c]) * scale[c]. Samples are read one at a time and on
// demand — .npy latents, raw IDX files and CIFAR batches are memory-mapped, image trees are decoded when
// read (within a cache bound) — so memory stays bounded by what the caller asks for, not by the data.
//
// data_read is thread-safe and never exits: it returns an error line naming the file, which the
// prefetcher carries back to the thread that waits for the batch. Everything at open time (a missing file,
// a truncated batch, an empty class folder, counts that disagree) is a one-line fatal error instead.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "data/dataset.h"

#define DATA_PATH_MAX 1024
#define DATA_MAX_CHANNELS 64
#define DATA_MAX_CLASSES 1000000   // --data-classes at most (the model's num_classes has the same bound)

// What the user asked for: the --data family of flags (CLI_DATA_FLAGS in cli/cli_data.h).
typedef struct {
    char path[DATA_PATH_MAX];
    char format[16];            // "" or "auto" (detected), "idx", "imagefolder", "cifar", "latents"
    int image_size;             // imagefolder: ADM's resize + centre crop to S x S; 0: the images' own size
    char labels[DATA_PATH_MAX]; // latents in one .npy: the labels .npy (default: <stem>_labels.npy or labels.npy beside it)
    char scale[256], shift[256];// latents: one value, or one per channel ("0.18215", "1,1,1,1"); "" = 1 and 0
    int cache_mb;               // imagefolder: decoded images kept in memory up to this many MiB
    int classes;                // the number of classes the labels must lie in (0: 0 .. the largest label, none empty)
} DataSpec;

void data_spec_defaults(DataSpec *s);   // path = Fashion-MNIST's directory, format auto, cache 1024 MiB

typedef struct DataSource DataSource;
typedef int (*DataReadFn)(DataSource *d, int64_t i, float *dst, char *err, size_t cap);

struct DataSource {
    const char *format;          // "idx", "imagefolder", "cifar", "latents"
    char path[DATA_PATH_MAX];    // what was opened (the split's directory or file)
    char split[8];               // "train", "test", or "all" (a source without splits)
    int64_t n;                   // samples
    int c, h, w;                 // sample shape
    int num_classes;             // 0 if unlabelled
    int classes_of_format;       // the format fixes the classes (CIFAR's 10/100, an ImageFolder's folders), not the labels
    int32_t *labels;             // [n], or NULL if unlabelled
    char **class_names;          // imagefolder: [num_classes] folder names; NULL otherwise
    int is_latent;               // values are latents: (v - shift) * scale; else pixels v / 255 * 2 - 1
    float scale[DATA_MAX_CHANNELS], shift[DATA_MAX_CHANNELS];
    int class_sorted;            // stored grouped by class: data_materialize subsets at random, not the first n
    char detail[1024];           // the format's own words: files, label field, preprocessing, skipped files
    DataSpec spec;               // what it was opened with (recorded, so the data can be opened again)
    // the implementation
    DataReadFn read;
    void (*close)(DataSource *d);
    void *impl;
};

// Opens the split ("train" or "test") of spec. A source without a split structure (one .npy, an
// ImageFolder without train/ and val/ sub-folders, a single CIFAR batch or IDX file without "train" in its
// name) is used whole if whole_ok, else it is a fatal error that says so (commands pass whole_ok = 0 for a
// test split they derive from --data, so a probe never tests on its training images).
DataSource *data_open(const DataSpec *spec, const char *split, int whole_ok);
void data_close(DataSource *d);
// A test split's labels must lie in the training split's classes (which the training split defines: docs/data.md
// "Classes"): a fatal error naming the first that does not.
void data_check_test_classes(const DataSource *train, const DataSource *test);

// Sample i ([c, h, w] floats) into dst. 0 on success; -1 with a one-line message in err (naming the file).
int data_read(DataSource *d, int64_t i, float *dst, char *err, size_t cap);
// The same, with a read error fatal (ddm_fatal): for the main thread.
void data_get(DataSource *d, int64_t i, float *dst);

// The dataset as the checkpoint should record it, one JSON object (malloc'd, unformatted):
// {"format","path","split","n","shape":[C,H,W],"num_classes","values","scale","shift","detail","open"}; with
// "classes" for an ImageFolder. "open" holds the spec it was opened with ({"path", "format", "image_size",
// "labels", "scale", "shift"}), which data_spec_from_description turns back into a DataSpec.
char *data_describe_json(const DataSource *d);
// The spec recorded in a description; 0 if the JSON has no usable "open" object (e.g. a converted official
// checkpoint, whose data are not on this machine), leaving s untouched.
int data_spec_from_description(const char *json, DataSpec *s);
// One line for a terminal: "cifar /data/cifar-10-batches-bin (train): 50000 x 3x32x32, 10 classes, ...".
void data_describe_line(const DataSource *d, char *buf, size_t cap);

// The first n samples (all if n <= 0 or n >= d->n) in memory as a Dataset — for the commands that hold
// their images (pca, probe, classifier). A class_sorted source gives a subset drawn with `seed` (kept in
// index order) instead, so a subset holds every class. `what` names the flag that sets n in the error
// raised when the images would not fit in memory. Reads in parallel (OpenMP).
Dataset data_materialize(DataSource *d, int64_t n, uint64_t seed, const char *what);
// n samples drawn without replacement with a fixed seed, [n, c, h, w] (caller frees): the draw of
// dataset_draw (eval/feature_sets.h), image for image, reading only those n samples.
float *data_draw(DataSource *d, int n, uint64_t seed);

// ---------------------------------------------------------------------------------------------
// Background loading. The caller decides the order; the loader only fills buffers, so what a step sees
// depends on the indices alone — resume stays bit-exact whatever the thread timing.

typedef struct DataPrefetch DataPrefetch;
// `workers` background threads (>= 1) that read samples in parallel.
DataPrefetch *data_prefetch_new(DataSource *d, int workers);
// Starts filling images[j] ([n, c, h, w]) with sample idx[j] and labels[j] with its label (labels may be
// NULL; -1 for an unlabelled source), j < n, and returns at once. idx is copied; images and labels belong
// to the loader until data_prefetch_wait returns. One batch at a time: a second submit waits for the first.
void data_prefetch_submit(DataPrefetch *p, const int64_t *idx, int n, float *images, int32_t *labels);
// Blocks until the submitted batch is complete; a read error there is fatal here (one line naming the file).
void data_prefetch_wait(DataPrefetch *p);
void data_prefetch_free(DataPrefetch *p);

// The training order, exactly that of the training loop before this interface (train.c's epoch_perm):
// sample j of step s is perm_e[g mod n] with g = s * batch + j, e = g / n, perm_e = rng_permutation of n
// from the stream (seed ^ 0xDA7A5EED, e). It depends on (seed, step) alone, so any step can be rebuilt.
typedef struct {
    uint64_t seed;
    int64_t n;
    int64_t epoch[2];   // the two most recent permutations (a batch can straddle an epoch boundary)
    int *perm[2];
    int next;           // which slot the next new epoch replaces
} DataOrder;
void data_order_init(DataOrder *o, uint64_t seed, int64_t n);
void data_order_batch(DataOrder *o, int64_t step, int batch, int64_t *idx);
void data_order_free(DataOrder *o);

// Order + prefetch + double buffering in one object: what a training loop needs.
//   DataLoader *l = data_loader_new(src, seed, batch, workers);
//   each step: const float *x = data_loader_batch(l, step, &labels, &idx);   // [batch, c, h, w]
// returns step's raw samples (before augmentation), waiting for the background fill started by the previous
// call, then starts fetching step + 1 into the other buffer; the pointers stay valid until the next call. A step other than the one prefetched (the first
// call, a resume, a jump) is read at once; the result is the same either way.
typedef struct DataLoader DataLoader;
DataLoader *data_loader_new(DataSource *d, uint64_t seed, int batch, int workers);
const float *data_loader_batch(DataLoader *l, int64_t step, const int32_t **labels, const int64_t **idx);
void data_loader_free(DataLoader *l);
