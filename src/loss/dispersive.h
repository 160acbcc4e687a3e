// Dispersive Loss (Wang & He, arXiv 2506.09027; SPEC §1.1): a regulariser that pushes the
// representations of the samples in one batch apart. z is one flattened block output per sample.
//
// Exact formulas (B = batch, D = dim, z_i = row i of z, all sums over ALL B^2 ordered pairs (i,j),
// diagonal i == j included):
//   infonce_l2   d_ij = ||z_i - z_j||^2 / D               (computed from the Gram matrix, clamped >= 0)
//                L = log( (1/B^2) sum_ij exp(-d_ij / tau) ) (stable log-sum-exp; minimum -log B)
//   infonce_cos  d_ij = -cos(z_i, z_j) = -<z_i, z_j> / (r_i r_j), r_i = max(||z_i||, 1e-12)
//                L = log( (1/B^2) sum_ij exp(-d_ij / tau) ) (maximum at identical directions: 1/tau)
//                A sample whose norm is below 1e-12 is divided by 1e-12 instead (so its u_i is ~0,
//                never NaN); its gradient then has no projection term.
//   hinge        L = (1/B^2) sum_ij max(0, eps - d_ij)^2, d_ij as in infonce_l2. The diagonal pairs
//                are kept in the mean (as in the InfoNCE variants): each contributes the constant
//                max(0,eps)^2 with zero gradient, so identical samples give L = eps^2 and the minimum
//                is eps^2 / B (eps > 0).
//   covariance   u_i = z_i / r_i (r_i as above), v_i = u_i - (1/B) sum_j u_j (centred over the batch),
//                C = V^T V / (B - 1)  (D x D feature covariance, never materialised),
//                L = sum_{a != b} C_ab^2 / D.
//                Computed as (||K||_F^2 - sum_a q_a^2) / ((B-1)^2 D) with K = V V^T (B x B) and
//                q_a = sum_i V_ia^2 = (B-1) C_aa. The 1/D is VICReg's convention for its covariance
//                term, (1/d) sum_{i!=j} C_ij^2 (our choice; SPEC marks the scaling unverified). For
//                random directions with D >> B the value is about 1/(B D), so lambda must be large.
//
// Cost: one Gram matrix Z Z^T (BLAS syrk) for the loss and one B x B by B x D product (BLAS gemm)
// for the gradient; everything B x B is accumulated in double, also in the float version.
// batch < 2: the loss is exactly 0 and dz (if given) is zeroed; the caller should warn.
#pragma once
#include "ops/ops.h"

// The variants, once: X(enum, name).
#define DISP_VARIANTS(X) X(DISP_INFONCE_L2, "infonce_l2") X(DISP_INFONCE_COS, "infonce_cos") X(DISP_HINGE, "hinge") \
    X(DISP_COVARIANCE, "covariance")
#define DISP_ENUM(e, name) e,
typedef enum { DISP_VARIANTS(DISP_ENUM) } DispVariant;
#undef DISP_ENUM
#define DISP_BAR(e, name) "|" name   // "none" DISP_VARIANTS(DISP_BAR): the --disp choices
// At most this many regularised (or monitored) blocks.
#define DISP_MAX_BLOCKS 64

// "infonce_l2", "infonce_cos", "hinge", "covariance" -> DispVariant; -1 if unknown (or NULL).
int dispersive_variant_parse(const char *name);
const char *dispersive_variant_name(DispVariant v);

// z: [batch, dim] row-major. Returns the loss; if dz != NULL it is OVERWRITTEN with dL/dz [batch, dim].
// tau (> 0) is used by the InfoNCE variants, eps by hinge; the other is ignored.
// Programming errors (dim < 1, bad variant, tau <= 0 for InfoNCE) abort through DDM_ASSERT.
float  dispersive_loss_f32(const float  *z, int batch, int dim, DispVariant v, float  tau, float  eps, float  *dz);
double dispersive_loss_f64(const double *z, int batch, int dim, DispVariant v, double tau, double eps, double *dz);

// The same on device memory of a table (what training uses): the Gram matrix through the table's syrk, its
// B x B part in double on the host (one download, one upload: dispersive_pair_loss), dz = G Z by gemm_fp32 — the
// same arithmetic as dispersive_loss_f32, bit for bit. Covariance downloads z and runs dispersive_loss_f32 on
// the host (its per-feature diagonal has no B x B form), then uploads dz. The work buffers hold batches of up
// to `cap` samples.
typedef struct {
    const Ops *ops;
    int cap;
    float *gram, *g;     // device [cap, cap]: Z Z^T (upper triangle) and the gradient matrix G
    float *h;            // host [cap, cap] staging
    double *M, *G;       // host [cap, cap]
} DispWork;
void disp_work_init(DispWork *w, const Ops *ops, int cap);
void disp_work_free(DispWork *w);
float dispersive_loss_dev(DispWork *w, const float *z, int batch, int dim, DispVariant v, float tau, float eps,
                          float *dz);
// The Gram matrix of z (device [batch, dim]) downloaded into w->M [batch, batch], symmetric, in double.
void dispersive_gram_dev(DispWork *w, const float *z, int batch, int dim);
