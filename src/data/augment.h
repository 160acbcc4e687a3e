// Training-time image augmentation: random resized crops (the MAE / l-DAE pretraining augmentation,
// torchvision's RandomResizedCrop semantics) with an optional horizontal flip.
#pragma once
#include "rng.h"

// A crop window in source pixel units: top-left corner (y0, x0), height h, width w.
typedef struct { float y0, x0, h, w; } CropBox;

// A window whose area is a uniform fraction in [scale_min, 1] of the image and whose aspect ratio w/h is
// log-uniform in [3/4, 4/3], placed uniformly inside the image. Up to 10 tries for a window that fits;
// then the whole image (as torchvision falls back to a central crop).
CropBox crop_box_sample(Rng *r, int H, int W, float scale_min);

// dst[C, H, W] = the window of src[C, H, W] resized to H x W bilinearly (pixel centres, edges clamped),
// mirrored left-right if flip. The whole-image box with flip 0 reproduces src exactly.
void crop_resize(const float *src, float *dst, int C, int H, int W, CropBox b, int flip);
