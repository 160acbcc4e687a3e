// IDX (MNIST) images and labels files, raw or gzipped: the first input byte picks which reader, the rest is
// the file. Images are read through the IDX data source too (memory-mapped, every sample).
#include "fuzz.h"
#include "data/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    const char *path = fuzz_write(mode == 2 ? "in-labels-idx1-ubyte" : "in-images-idx3-ubyte", data + 1, size - 1);
    FUZZ_TRY {
        if (mode == 0) {
            IdxImages im;
            idx_images_open(path, &im);
            volatile unsigned s = 0;
            for (uint64_t i = 0; i < (uint64_t)im.n * im.h * im.w; i++) s = s + im.pixels[i];
            idx_images_close(&im);
        } else if (mode == 1) {
            fuzz_read_source(path, "idx", NULL, 16);
        } else {
            unsigned char *l = idx_labels_read(path, size > 1 ? data[1] + 1u : 1u);
            free(l);
        }
    }
    return 0;
}
