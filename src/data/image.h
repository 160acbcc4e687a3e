// Image files for the ImageFolder source: PNG through libpng, JPEG through libjpeg(-turbo) — the decoders
// PIL itself uses — and ADM's preprocessing (center_crop_arr) with PIL's resampling arithmetic. Nothing here exits:
// every function returns -1 with one line in err that names the file, so a background thread can report it.
#pragma once
#include <stddef.h>

// Decoding refuses images of more pixels than this (a corrupt header cannot demand gigabytes).
#define IMAGE_MAX_PIXELS ((long long)1 << 28)

typedef enum { IMAGE_PNG = 1, IMAGE_JPEG = 2 } ImageKind;

// From the file's first bytes (not its name): kind, width, height and channels after decoding
// (1 = grey, 3 = colour; alpha is dropped, palettes expanded). Reads only the header.
int image_probe(const char *path, int *kind, int *w, int *h, int *comp, char *err, size_t cap);

// The whole image: *px = malloc'd h rows of w pixels of *comp (1 or 3) interleaved bytes. Truncated or
// corrupt data (a bad CRC, a missing IEND, a JPEG that ends early) is an error, not a grey tail.
int image_decode(const char *path, unsigned char **px, int *w, int *h, int *comp, char *err, size_t cap);

// ADM's center_crop_arr (guided-diffusion image_datasets.py, used by DiT, SiT, fast-DiT): while the short
// side is at least 2 * size, halve both sides (integer division) with a box filter; then resize so the
// short side is size (bicubic, the long side rounded half to even as Python's round), and take the
// central size x size crop; PIL's BOX and BICUBIC filters in its 8-bit fixed point, so the result is ADM's to the
// byte. src: h x w x comp bytes; dst: size x size x comp bytes. -1 (out of memory) or 0.
int image_center_crop_arr(const unsigned char *src, int w, int h, int comp, int size, unsigned char *dst);
