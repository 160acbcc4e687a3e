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

typedef enum { DISP_INFONCE_L2, DISP_INFONCE_COS, DISP_HINGE, DISP_COVARIANCE } DispVariant;

// "infonce_l2", "infonce_cos", "hinge", "covariance" -> DispVariant; -1 if unknown (or NULL).
int dispersive_variant_parse(const char *name);
const char *dispersive_variant_name(DispVariant v);
// The valid names, comma separated, for error messages.
#define DISPERSIVE_VARIANT_NAMES "infonce_l2, infonce_cos, hinge, covariance"

// z: [batch, dim] row-major. Returns the loss; if dz != NULL it is OVERWRITTEN with dL/dz [batch, dim].
// tau (> 0) is used by the InfoNCE variants, eps by hinge; the other is ignored.
// Programming errors (dim < 1, bad variant, tau <= 0 for InfoNCE) abort through DDM_ASSERT.
float  dispersive_loss_f32(const float  *z, int batch, int dim, DispVariant v, float  tau, float  eps, float  *dz);
double dispersive_loss_f64(const double *z, int batch, int dim, DispVariant v, double tau, double eps, double *dz);

// Public API (also in include/ddm.h): the variant by name. A user error (unknown name, tau <= 0 for an
// InfoNCE variant, dim < 1) prints one line and exits with status 1.
float ddm_dispersive_loss(const float *z, int batch, int dim, const char *variant, float tau, float eps, float *dz);
