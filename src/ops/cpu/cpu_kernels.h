// The CPU kernels by name, in float (behind ops_cpu) and double (for the finite-difference tests).
// Signatures are those of the Ops table in ops.h with REAL = float or double.
#pragma once
#define DDM_DECLARE_KERNELS(REAL, S) \
    void gemm_##S(int, int, int, int, int, REAL, const REAL *, int, const REAL *, int, REAL, REAL *, int); \
    void add_bias_##S(REAL *, const REAL *, int, int); \
    void bias_grad_##S(REAL *, const REAL *, int, int); \
    void add_broadcast_##S(REAL *, const REAL *, int, long); \
    void ln_modulate_fwd_##S(REAL *, REAL *, REAL *, const REAL *, const REAL *, const REAL *, int, int, int, int); \
    void ln_modulate_bwd_##S(REAL *, REAL *, REAL *, const REAL *, const REAL *, const REAL *, const REAL *, \
                             const REAL *, int, int, int, int); \
    void attention_fwd_##S(REAL *, REAL *, const REAL *, int, int, int, int); \
    void attention_bwd_##S(REAL *, REAL *, const REAL *, const REAL *, const REAL *, int, int, int, int); \
    void gelu_fwd_##S(REAL *, const REAL *, long); \
    void gelu_bwd_##S(REAL *, const REAL *, const REAL *, long); \
    void silu_fwd_##S(REAL *, const REAL *, long); \
    void silu_bwd_##S(REAL *, const REAL *, const REAL *, long); \
    void gated_residual_fwd_##S(REAL *, const REAL *, const REAL *, int, int, int, int); \
    void gated_residual_bwd_##S(REAL *, REAL *, const REAL *, const REAL *, const REAL *, int, int, int, int); \
    void patchify_##S(REAL *, const REAL *, int, int, int, int, int); \
    void patchify_bwd_##S(REAL *, const REAL *, int, int, int, int, int); \
    void unpatchify_##S(REAL *, const REAL *, int, int, int, int, int); \
    void unpatchify_bwd_##S(REAL *, const REAL *, int, int, int, int, int); \
    void embed_fwd_##S(REAL *, const REAL *, const int *, int, int); \
    void embed_bwd_##S(REAL *, const REAL *, const int *, int, int);

DDM_DECLARE_KERNELS(float, f32)
DDM_DECLARE_KERNELS(double, f64)
