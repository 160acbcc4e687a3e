// .npy: the file loader, the in-memory parser (.npz members go through it) and the header alone (what the
// memory-mapped latents use).
#include "fuzz.h"
#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("in.npy", data, size);
    FUZZ_TRY {
        NpyArray a = npy_load_f32(path);
        int64_t n = npy_numel(&a);
        volatile float sum = 0;
        for (int64_t i = 0; i < n; i++) sum = sum + a.data[i];   // every element the shape promises is there
        npy_free(&a);
    }
    FUZZ_TRY {
        NpyArray a = npy_parse_f32(data, size, "fuzz input");
        npy_free(&a);
    }
    FUZZ_TRY { npy_parse_header(data, size, "fuzz input"); }
    return 0;
}
