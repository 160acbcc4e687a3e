// Sample-quality metrics on feature vectors (SPEC §2 "Evaluation"): the numerical core behind FID
// (Frechet distance of Gaussian fits), KID (kernel inception distance) and improved
// precision/recall. The feature extractor is separate: everything here takes plain float features,
// one row of `dim` floats per sample, and computes in float64 unless stated.
//
// Invalid arguments (dim < 1, too few samples, non-finite features or moments) are user errors
// reported with ddm_fatal.
#pragma once
#include <stdint.h>

// ---- running moments (features arrive in batches) ---------------------------------------------
// sum[a] = sum_i x_ia, outer[a*dim+b] = sum_i x_ia x_ib (only the upper triangle a <= b is kept
// up to date; featstats_mean_cov symmetrises). Accumulated in float64; the outer products go
// through BLAS dsyrk on a float64 copy of the batch, in chunks of rows so memory stays bounded.
typedef struct { int dim; long n; double *sum /* [dim] */; double *outer /* [dim, dim] */; } FeatStats;

void featstats_init(FeatStats *s, int dim);
void featstats_add(FeatStats *s, const float *feats, int n); // feats [n, dim]; fatal on NaN/Inf
// mean [dim], cov [dim, dim] (full, symmetric), unbiased: (sum x x^T - n mean mean^T) / (n - 1).
// Needs n >= 2.
void featstats_mean_cov(const FeatStats *s, double *mean, double *cov);
void featstats_free(FeatStats *s);
// n <= dim: the covariance is singular (rank <= n - 1 < dim). Returns 1 and prints one warning
// line to stderr ("ddm: warning: <what>: ...": the rank, that the Frechet distance is then dominated
// by the estimate, and what to do: at least dim + 1 samples, better >= 10 dim, or a lower-dimensional
// feature); returns 0 silently otherwise. The Frechet distance is still finite, but biased.
int featstats_warn_if_singular(const FeatStats *s, const char *what);

// ---- Frechet distance --------------------------------------------------------------------------
// d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}) between N(mu1, S1) and N(mu2, S2).
// tr((S1 S2)^{1/2}) is computed without a general (non-symmetric) matrix square root:
// S1 = U L U^T (LAPACKE_dsyevd, negative eigenvalues from round-off clamped to 0),
// M = L^{1/2} U^T S2 U L^{1/2} is symmetric PSD and similar to S1 S2 where S1 is invertible, so
// tr((S1 S2)^{1/2}) = sum_k sqrt(max(eig_k(M), 0)). Well defined for singular / rank-deficient
// covariances. Only the upper triangle of cov1 is read; cov2 is read in full. The traces use the
// diagonals as given. The result is clamped at 0 (it is >= 0 up to round-off).
// Cost: two dim^3 products and two symmetric eigendecompositions.
double frechet_distance(const double *mu1, const double *cov1, const double *mu2, const double *cov2,
                        int dim);

// ---- KID ---------------------------------------------------------------------------------------
// Kernel Inception Distance (Binkowski et al. 2018, as in their code, torch-fidelity and clean-fid):
// k(x, y) = (x.y / dim + 1)^3; for each of n_subsets subsets, m = min(subset_size, n1, n2) rows of
// f1 and m rows of f2 are drawn without replacement and the unbiased estimate
//   MMD^2_u = [sum_{i!=j} k(x_i,x_j) + sum_{i!=j} k(y_i,y_j)] / (m (m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2
// is computed (Gram matrices in float64 via BLAS). *mean is their average, *std their standard
// deviation (population, ddof 0, as torch-fidelity). Subset s is drawn from the stream
// (seed, s), so the result depends on the seed only (not on threads). Needs m >= 2.
void kernel_inception_distance(const float *f1, long n1, const float *f2, long n2, int dim, int n_subsets,
                               int subset_size, uint64_t seed, double *mean, double *std);

// ---- improved precision / recall ---------------------------------------------------------------
// Kynkaanniemi et al. 2019 (as in their code and the ADM evaluator): the radius of each sample is
// the distance to its k-th nearest neighbour within its own set (itself excluded, by index);
// precision = fraction of fake samples within the radius of at least one real sample (d <= r),
// recall = fraction of real samples within the radius of at least one fake sample.
// Squared euclidean distances ||x||^2 + ||y||^2 - 2 x.y (Gram in float32 via BLAS sgemm, norms in
// float64, clamped >= 0), computed block by block, so memory is O(block * max(n_real, n_fake)).
// Needs 1 <= k < n_real and k < n_fake.
void precision_recall(const float *real, long n_real, const float *fake, long n_fake, int dim, int k,
                      double *precision, double *recall);
// The same with an explicit number of rows per block (0 = automatic, about 32 MB of distances).
void precision_recall_blocked(const float *real, long n_real, const float *fake, long n_fake, int dim, int k,
                              long block, double *precision, double *recall);
