// Dispersive Loss, all four variants (formulas and scaling: dispersive.h). The math is written once:
// the B x B part below in double, the BLAS / O(B*D) part in dispersive_impl.inc, included for float
// and for double.
#include "loss/dispersive.h"
#include "common.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DISP_NORM_EPS 1e-12 // rows shorter than this are divided by it instead of by their norm

#define DISP_NAME(e, name) name,
static const char *const g_names[] = {DISP_VARIANTS(DISP_NAME)};
#define N_VARIANTS ((int)(sizeof g_names / sizeof g_names[0]))

int dispersive_variant_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < N_VARIANTS; i++) if (strcmp(name, g_names[i]) == 0) return i;
    return -1;
}

const char *dispersive_variant_name(DispVariant v) { return ((int)v >= 0 && (int)v < N_VARIANTS) ? g_names[v] : "unknown"; }

// Loss of a pairwise variant from the Gram matrix M = Z Z^T [B,B]. If G != NULL it receives the
// [B,B] matrix with dL/dZ = G Z. W below is dL/d(pair quantity), symmetric because M is.
static double pair_loss(const double *M, int B, int D, DispVariant v, double tau, double eps, double *G) {
    size_t BB = (size_t)B * B;
    double *S = xmalloc(BB * sizeof(double)); // [B,B] d_ij (l2, hinge) or s_ij = c_ij or -d_ij / tau
    double *W = xmalloc(BB * sizeof(double)); // [B,B] dL/dd_ij (l2, hinge) or dL/dc_ij (cos)
    double *r = xmalloc((size_t)B * sizeof(double));
    for (int i = 0; i < B; i++) r[i] = fmax(sqrt(fmax(M[(size_t)i * B + i], 0)), DISP_NORM_EPS);

    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            size_t ij = (size_t)i * B + j;
            if (v == DISP_INFONCE_COS) {
                S[ij] = M[ij] / (r[i] * r[j]) / tau;
            } else {
                double d = i == j ? 0 : fmax(M[(size_t)i * B + i] + M[(size_t)j * B + j] - 2 * M[ij], 0) / D;
                S[ij] = v == DISP_HINGE ? d : -d / tau;
            }
        }

    double loss;
    if (v == DISP_HINGE) {
        double sum = 0;
        for (size_t k = 0; k < BB; k++) {
            double h = fmax(eps - S[k], 0);
            sum += h * h;
            W[k] = -2 * h / ((double)B * B);
        }
        loss = sum / ((double)B * B);
    } else {
        // log of the mean of exp(s) over all B^2 pairs, by log-sum-exp with the max subtracted.
        double smax = -INFINITY, sum = 0;
        for (size_t k = 0; k < BB; k++) smax = fmax(smax, S[k]);
        for (size_t k = 0; k < BB; k++) sum += (W[k] = exp(S[k] - smax));
        loss = smax + log(sum / ((double)B * B));
        // dL/ds = softmax; ds/dd = -1/tau (l2), ds/dc = 1/tau (cos)
        double f = (v == DISP_INFONCE_COS ? 1.0 : -1.0) / (tau * sum);
        for (size_t k = 0; k < BB; k++) W[k] *= f;
    }

    if (G) {
        if (v == DISP_INFONCE_COS) {
            // dL/du_k = 2 sum_j W_kj u_j; dz_k = (I - u_k u_k^T) dL/du_k / r_k (no projection if clamped)
            for (int k = 0; k < B; k++) {
                double a = 0;
                for (int j = 0; j < B; j++) {
                    size_t kj = (size_t)k * B + j;
                    G[kj] = 2 * W[kj] / (r[k] * r[j]);
                    a += 2 * W[kj] * M[kj] / (r[k] * r[j]);
                }
                if (r[k] > DISP_NORM_EPS) G[(size_t)k * B + k] -= a / (r[k] * r[k]);
            }
        } else {
            // d(d_ij)/dz_i = 2 (z_i - z_j) / D, so dz_k = (4/D) sum_j W_kj (z_k - z_j)
            for (int k = 0; k < B; k++) {
                double rs = 0;
                for (int j = 0; j < B; j++) {
                    size_t kj = (size_t)k * B + j;
                    G[kj] = j == k ? 0 : -4.0 / D * W[kj];
                    if (j != k) rs += W[kj];
                }
                G[(size_t)k * B + k] = 4.0 / D * rs;
            }
        }
    }
    free(S); free(W); free(r);
    return loss;
}

#define REAL float
#define FN(x) x##_f32
#define SYRK cblas_ssyrk
#define GEMM cblas_sgemm
#include "loss/dispersive_impl.inc"
#undef REAL
#undef FN
#undef SYRK
#undef GEMM

#define REAL double
#define FN(x) x##_f64
#define SYRK cblas_dsyrk
#define GEMM cblas_dgemm
#include "loss/dispersive_impl.inc"
#undef REAL
#undef FN
#undef SYRK
#undef GEMM

// ---------------------------------------------------------------- on a device

void disp_work_init(DispWork *w, const Ops *ops, int cap) {
    size_t BB = (size_t)cap * cap;
    w->ops = ops;
    w->cap = cap;
    w->gram = ops_alloc_f32(ops, BB);
    w->g = ops_alloc_f32(ops, BB);
    w->h = xmalloc(BB * sizeof(float));
    w->M = xmalloc(BB * sizeof(double));
    w->G = xmalloc(BB * sizeof(double));
}

void disp_work_free(DispWork *w) {
    if (!w->ops) return;
    w->ops->free(w->gram);
    w->ops->free(w->g);
    free(w->h); free(w->M); free(w->G);
    w->ops = NULL;
}

void dispersive_gram_dev(DispWork *w, const float *z, int B, int D) {
    if (B > w->cap) DDM_BUG("Dispersive Loss work for %d samples, got %d", w->cap, B);
    w->ops->syrk(B, D, 1.0f, z, D, 0.0f, w->gram, B);
    ops_download_f32(w->ops, w->h, w->gram, (size_t)B * B);
    for (int i = 0; i < B; i++)
        for (int j = i; j < B; j++) w->M[(size_t)i * B + j] = w->M[(size_t)j * B + i] = (double)w->h[(size_t)i * B + j];
}

float dispersive_loss_dev(DispWork *w, const float *z, int B, int D, DispVariant v, float tau, float eps, float *dz) {
    const Ops *o = w->ops;
    DDM_ASSERT((int)v >= 0 && v <= DISP_COVARIANCE);
    if (B < 2) {
        if (dz && D > 0) o->zero(dz, (size_t)(B > 0 ? B : 0) * D);
        return 0;
    }
    if (v == DISP_COVARIANCE) {   // explicit copies: z down, dz up
        float *hz = xmalloc((size_t)B * D * sizeof(float)), *hdz = dz ? xmalloc((size_t)B * D * sizeof(float)) : NULL;
        ops_download_f32(o, hz, z, (size_t)B * D);
        float loss = dispersive_loss_f32(hz, B, D, v, tau, eps, hdz);
        if (dz) ops_upload_f32(o, dz, hdz, (size_t)B * D);
        free(hz);
        free(hdz);
        return loss;
    }
    if (v != DISP_HINGE) DDM_ASSERT(tau > 0);
    dispersive_gram_dev(w, z, B, D);
    double loss = pair_loss(w->M, B, D, v, tau, eps, dz ? w->G : NULL);
    if (dz) {
        for (size_t i = 0; i < (size_t)B * B; i++) w->h[i] = (float)w->G[i];
        ops_upload_f32(o, w->g, w->h, (size_t)B * B);
        o->gemm_fp32(0, 0, B, D, B, 1.0f, w->g, B, z, D, 0.0f, dz, D);
    }
    return (float)loss;
}
