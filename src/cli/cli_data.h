// The dataset flags every data-reading command shares (the --data family of data.h), so they accept the
// same formats with the same words: CLI_DATA_FLAGS(spec) in a command's ArgSpec table, then
// data_open(&spec, "train", 1) and cli_open_test(&spec, test_path) for its test split.
#pragma once
#include <stdio.h>
#include "config/args.h"
#include "data/data.h"

#define CLI_DATA_FLAGS(s)                                                                                         \
    {"data", ARG_STR, (s).path, sizeof (s).path, 0, 0, "dataset: an IDX directory or file (MNIST-like), an ImageFolder (one "   \
     "sub-folder per class; DIR/train + DIR/val splits), CIFAR-10/100 binary batches, or latents (.npy/.npz [N,C,H,W], or "    \
     "fast-DiT's X_features/ + X_labels/ folders); docs/data.md", 0, NULL},                                                          \
    {"data-format", ARG_STR, (s).format, sizeof (s).format, 0, 0, "auto (detected) | idx | imagefolder | cifar | latents", 0, NULL}, \
    {"image-size", ARG_INT, &(s).image_size, 0, 0, 65536, "ImageFolder: resize the short side and centre-crop to S x S "        \
     "(ADM's center_crop_arr); 0 = the images' own size, which must then agree", 0, NULL},                                          \
    {"data-labels", ARG_STR, (s).labels, sizeof (s).labels, 0, 0, "latents in one .npy: their labels .npy (default: "          \
     "<stem>_labels.npy or labels.npy beside it)", 0, NULL},                                                                         \
    {"latent-scale", ARG_STR, (s).scale, sizeof (s).scale, 0, 0, "latents: x = (v - shift) * scale, one value or one per "     \
     "channel, e.g. 0.18215 for raw SD-VAE latents (fast-DiT's features are already scaled: keep 1) [1]", 0, NULL},                  \
    {"latent-shift", ARG_STR, (s).shift, sizeof (s).shift, 0, 0, "latents: the shift of --latent-scale, one value or one per " \
     "channel [0]", 0, NULL},                                                                                                        \
    {"data-classes", ARG_INT, &(s).classes, 0, 0, DATA_MAX_CLASSES, "the number of classes the labels lie in (labels "     \
     "0..K-1; a subset may leave some empty); 0 = 0 .. the largest label, every one with a sample", 0, NULL},                      \
    {"data-cache-mb", ARG_INT, &(s).cache_mb, 0, 0, 1 << 30, "ImageFolder: decoded images kept in memory, MiB (a split that " \
     "fits is decoded and checked when opened)", 0, NULL}

#define CLI_TEST_DATA_FLAG(buf)                                                                                   \
    {"test-data", ARG_STR, (buf), sizeof (buf), 0, 0, "the test split, read with the --data flags (default: the test split of " \
     "--data: IDX t10k/test files, CIFAR's test batch, an ImageFolder's val/ or test/ folder)", 0, NULL}

// The test split: test_path (whole, if it has no splits) when given, else the test split of spec.
DataSource *cli_open_test(const DataSpec *spec, const char *test_path);
// When none of the dataset flags was given (ap: the command's parsed flags) and ckpt records the data it was
// trained on ("dataset" metadata, data_describe_json), spec becomes that data, said on stderr; else unchanged.
// So `ddm probe --ckpt C` and `ddm eval --ckpt C` evaluate on the training data's format by default.
void cli_data_from_checkpoint(DataSpec *spec, const ArgParser *ap, const char *ckpt, const char *command);
// The dataset flags of spec as `name = value` lines, the --config format (flags at their defaults omitted, so
// a file written from a run's settings reads back to the same spec): for a run's resolved config file.
void cli_data_write_config(FILE *f, const DataSpec *spec, const char *test_data);
// Prints the one-line description of d to stderr, prefixed "ddm <command>: <role>: ".
void cli_print_data(const char *command, const char *role, const DataSource *d);
