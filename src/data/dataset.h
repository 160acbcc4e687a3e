// In-memory image datasets: every image as float in [-1, 1], optional integer labels.
#pragma once

typedef struct {
    int n, c, h, w;
    float *images;   // [n, c, h, w], scaled to [-1, 1] as x/255*2-1
    int *labels;     // [n], NULL if none
    int num_classes; // max label + 1, 0 if no labels
} Dataset;

// IDX files (the MNIST format), gzipped or raw. labels_path may be NULL. Fatal on bad magic, zero
// dimensions, truncated data or trailing bytes, and a label count different from the image count.
Dataset dataset_load_idx(const char *images_path, const char *labels_path);

#define DDM_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
// Fashion-MNIST from a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz];
// split is "train" or "test".
Dataset dataset_load_fashion_mnist(const char *dir, const char *split);
void dataset_free(Dataset *d);
