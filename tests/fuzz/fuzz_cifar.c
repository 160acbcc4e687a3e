// One CIFAR binary batch (CIFAR-10 or -100, told apart by which record size divides the length) through the
// CIFAR data source: open (sizes, labels) and every sample read.
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("batch.bin", data, size);
    FUZZ_TRY { fuzz_read_source(path, "cifar", NULL, INT64_MAX); }
    return 0;
}
