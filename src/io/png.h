// PNG image grids (via stb_image_write), for sample sheets and reconstructions.
#pragma once

// imgs: [n, c, h, w] floats; value lo maps to 0 and hi to 255 (clamped; NaN maps to 0). c == 1 is grey,
// c == 3 RGB; any other c is a fatal error (the caller must pick channels). Images are laid out in a
// grid of ncols columns with `pad` pixels of mid-grey border around and between them, each pixel
// repeated `scale` times in both directions. Written atomically.
void png_write_grid(const char *path, const float *imgs, int n, int c, int h, int w, int ncols, int pad, int scale,
                    float lo, float hi);
