// The public PCA tokenizer API of include/ddm.h over the internal Pca.
#include "ddm.h"
#include <stdlib.h>
#include "common.h"
#include "tok/pca.h"

struct ddm_pca { Pca *pca; };

ddm_pca *ddm_pca_load(const char *path) {
    ddm_pca *p = xmalloc(sizeof *p);
    p->pca = pca_load(path);
    return p;
}

int ddm_pca_dim(const ddm_pca *p) { return p->pca->d; }

void ddm_pca_encode(const ddm_pca *p, const float *imgs, int n, int channels, int height, int width, float *latents) {
    pca_check_images(p->pca, channels, height, width, "ddm_pca_encode");
    pca_encode(p->pca, imgs, n, height, width, latents);
}

void ddm_pca_decode(const ddm_pca *p, const float *latents, int n, int channels, int height, int width, float *imgs) {
    pca_check_images(p->pca, channels, height, width, "ddm_pca_decode");
    pca_decode(p->pca, latents, n, height, width, imgs);
}

void ddm_pca_free(ddm_pca *p) {
    if (!p) return;
    pca_free(p->pca);
    free(p);
}
