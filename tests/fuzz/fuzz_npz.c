// .npz: the ZIP reader (end-of-central-directory, ZIP64, the central directory, stored and deflated
// members, CRC-32), then every member through the .npy parser.
#include "fuzz.h"
#include "io/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("in.npz", data, size);
    char **volatile names = NULL;
    volatile int n = 0;
    FUZZ_TRY {
        int count = 0;
        names = npz_member_names(path, &count);
        n = count;
    }
    for (volatile int i = 0; i < n; i++)
        FUZZ_TRY {
            char chosen[600];
            NpyArray a = npz_load_f32(path, names[i], chosen, sizeof chosen);
            npy_free(&a);
        }
    FUZZ_TRY {
        NpyArray a = npz_load_f32(path, NULL, NULL, 0);
        npy_free(&a);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return 0;
}
