// PNG and JPEG files as the ImageFolder source reads them (src/data/image.c: libpng, libjpeg): the header
// probe, the full decode, and ADM's centre crop of what was decoded. Nothing there exits: errors come back
// as -1 with a message.
#include "fuzz.h"
#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write("in.img", data, size);
    char err[1024];
    int kind, w, h, comp;
    fuzz_setup();
    if (image_probe(path, &kind, &w, &h, &comp, err, sizeof err) != 0) return 0;
    unsigned char *px = NULL;
    int w2, h2, c2;
    if (image_decode(path, &px, &w2, &h2, &c2, err, sizeof err) != 0) return 0;
    if (w2 != w || h2 != h || c2 != comp) abort();   // the probe promised what the decode delivers
    unsigned char dst[8 * 8 * 3];
    if ((long long)w * h <= 1 << 16) image_center_crop_arr(px, w, h, comp, 8, dst);
    free(px);
    return 0;
}
