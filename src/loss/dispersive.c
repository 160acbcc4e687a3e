// Dispersive Loss, all four variants (formulas and scaling: dispersive.h). The math is written once:
// the B x B part below in double, the BLAS / O(B*D) part in dispersive_impl.inc, included for float
// and for double.
#include "loss/dispersive.h"
#include "ddm.h"
#include "common.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DISP_NORM_EPS 1e-12 // rows shorter than this are divided by it instead of by their norm

static const char *const g_names[] = {"infonce_l2", "infonce_cos", "hinge", "covariance"};

int dispersive_variant_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < 4; i++) if (strcmp(name, g_names[i]) == 0) return i;
    return -1;
}

const char *dispersive_variant_name(DispVariant v) {
    return ((int)v >= 0 && v <= DISP_COVARIANCE) ? g_names[v] : "unknown";
}

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

float ddm_dispersive_loss(const float *z, int batch, int dim, const char *variant, float tau, float eps, float *dz) {
    int v = dispersive_variant_parse(variant);
    if (v < 0)
        ddm_fatal("unknown dispersive loss variant '%s' (valid: %s)", variant ? variant : "(null)",
                  DISPERSIVE_VARIANT_NAMES);
    if (batch < 0 || (batch >= 2 && dim < 1))
        ddm_fatal("dispersive loss: bad shape batch=%d dim=%d (expected batch >= 0, dim >= 1)", batch, dim);
    if ((v == DISP_INFONCE_L2 || v == DISP_INFONCE_COS) && !(tau > 0 && isfinite(tau)))
        ddm_fatal("dispersive loss: tau must be a finite number > 0 for %s (got %g)", g_names[v], tau);
    return dispersive_loss_f32(z, batch, dim, (DispVariant)v, tau, eps, dz);
}
