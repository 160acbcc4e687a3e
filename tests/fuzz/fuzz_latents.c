// Precomputed latents through the latents data source: byte 0 picks .npy (memory-mapped) or .npz (in memory);
// bytes 1-2 (little-endian) are the length of a labels .npy that follows, the rest is the latents file.
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int npz = data[0] & 1;
    size_t nl = (size_t)data[1] | (size_t)data[2] << 8;
    if (nl > size - 3) nl = 0;
    const char *labels = nl ? fuzz_write("lab.npy", data + 3, nl) : NULL;
    const char *path = fuzz_write(npz ? "x.npz" : "x.npy", data + 3 + nl, size - 3 - nl);
    FUZZ_TRY { fuzz_read_source(path, "latents", labels, 16); }
    if (labels) unlink(labels);   // not beside the next input's latents as its labels.npy
    return 0;
}
