// Sets of images to evaluate: a float32 .npy [N, C, H, W] with values in [-1, 1], or a directory of
// PNG files (8-bit grey or RGB, read in name order, scaled to [-1, 1]).
#pragma once

typedef struct { int n, c, h, w; float *images; } ImageSet;

ImageSet imageset_load(const char *path);   // one-line fatal errors on anything unreadable or inconsistent
void imageset_free(ImageSet *s);
