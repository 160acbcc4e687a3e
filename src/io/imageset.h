// Sets of images to evaluate, as float [N, C, H, W] in [-1, 1]: from a .npy, or from an .npz ("FILE.npz"
// reads arr_0 if present, else the first array; "FILE.npz:NAME" the array NAME), holding float (or
// integer other than uint8) [N, C, H, W] in [-1, 1], or uint8 [N, H, W, C] (C = 1 or 3, the ADM
// reference-batch layout) or [N, H, W] in [0, 255]; or from a directory of PNG files (grey or RGB, read in name
// order, alpha dropped; 16-bit samples reduced to their high byte, as data/image.c does). uint8 and PNG pixels v become v / 127.5 - 1.
#pragma once

typedef struct { int n, c, h, w; float *images; } ImageSet;

ImageSet imageset_load(const char *path);   // one-line fatal errors on anything unreadable or inconsistent
void imageset_free(ImageSet *s);
