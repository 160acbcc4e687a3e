// PNG image grids (via stb_image_write), for sample sheets and reconstructions; and reading one PNG.
#pragma once
#include <stddef.h>

// imgs: [n, c, h, w] floats; value lo maps to 0 and hi to 255 (clamped; NaN maps to 0). c == 1 is grey,
// c == 3 RGB; any other c is a fatal error (the caller must pick channels). Images are laid out in a
// grid of ncols columns with `pad` pixels of mid-grey border around and between them, each pixel
// repeated `scale` times in both directions. Written atomically.
void png_write_grid(const char *path, const float *imgs, int n, int c, int h, int w, int ncols, int pad, int scale,
                    float lo, float hi);

// The same grid encoded as PNG in memory (for TensorBoard images): *len bytes, free() it; the grid's size in
// *width x *height. `what` names the destination in errors (the same checks as png_write_grid).
unsigned char *png_grid_encode(const char *what, const float *imgs, int n, int c, int h, int w, int ncols, int pad,
                               int scale, float lo, float hi, int *len, int *width, int *height);

// Reads an 8-bit (or 16-bit, reduced to 8) PNG: *comp channels per pixel, interleaved, h rows of w
// pixels; the result is malloc'd (free()). The chunk structure is checked first (signature, IHDR first,
// every chunk inside the file with a matching CRC-32, an IEND), so a truncated or corrupted file is a
// one-line fatal error that says which, rather than a decoder message or silently wrong pixels.
// Refuses images larger than image.h's IMAGE_MAX_PIXELS, and any whose IHDR declares more pixel bytes than its
// IDAT data could inflate to (deflate cannot expand more than 1032:1), before the decoder allocates for them.
unsigned char *png_read(const char *path, int *w, int *h, int *comp);

// That check on a whole PNG file in memory (chunks already walked, or walked here with bounds checks): 0 if the
// declared size is plausible, else -1 with the reason in err (without the path). Shared by data/image.c.
int png_check_declared_size(const unsigned char *b, size_t size, char *err, size_t cap);
