// The DiT / SiT backbone (SPEC §2): patch embedding + frozen 2-D sin-cos positions, timestep and label
// embedders, adaLN-Zero transformer blocks, final layer, unpatchify. Forward and backward over the op
// interface only (src/ops/ops.h): every pointer a Dit holds or takes is device memory. Parameters live in one
// allocation under their PyTorch state-dict names and layouts; activations in one arena.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "ops/ops.h"

#define DIT_FREQ_DIM 256

typedef struct {
    int depth, hidden, heads, patch;
    int in_channels, height, width;
    int num_classes;   // 0 = unconditional (no label embedder); else a table of num_classes + 1 rows (last = null)
    int learn_sigma;   // output 2*in_channels; the extra channels are ignored by the SiT/eps losses
    int mlp_ratio;     // 4 in every published variant
} DitConfig;

// The parameter list, written once: X(field, state-dict name, trainable, ndim, d0, d1, d2, d3) in the reference
// implementation's state-dict order, dimensions in terms of H (hidden), F (MLP width), T (tokens), P (patch),
// CIN (input channels), COUT (output channels), NCLS (classes). DIT_PARAMS are the model's own (the label
// table only when NCLS > 0), DIT_BLOCK_PARAMS those of each block, named "blocks.<k>." + name.
#define DIT_PARAMS_HEAD(X)                                                                  \
    X(pos, "pos_embed", 0, 3, 1, T, H, 1)                  /* frozen 2-D sin-cos */         \
    X(x_w, "x_embedder.proj.weight", 1, 4, H, CIN, P, P)                                    \
    X(x_b, "x_embedder.proj.bias", 1, 1, H, 1, 1, 1)                                        \
    X(t0_w, "t_embedder.mlp.0.weight", 1, 2, H, DIT_FREQ_DIM, 1, 1)                         \
    X(t0_b, "t_embedder.mlp.0.bias", 1, 1, H, 1, 1, 1)                                      \
    X(t2_w, "t_embedder.mlp.2.weight", 1, 2, H, H, 1, 1)                                    \
    X(t2_b, "t_embedder.mlp.2.bias", 1, 1, H, 1, 1, 1)                                      \
    X(y_table, "y_embedder.embedding_table.weight", 1, 2, NCLS + 1, H, 1, 1) /* NCLS > 0 */
#define DIT_BLOCK_PARAMS(X)                                                                 \
    X(qkv_w, "attn.qkv.weight", 1, 2, 3 * H, H, 1, 1)                                       \
    X(qkv_b, "attn.qkv.bias", 1, 1, 3 * H, 1, 1, 1)                                         \
    X(proj_w, "attn.proj.weight", 1, 2, H, H, 1, 1)                                         \
    X(proj_b, "attn.proj.bias", 1, 1, H, 1, 1, 1)                                           \
    X(fc1_w, "mlp.fc1.weight", 1, 2, F, H, 1, 1)                                            \
    X(fc1_b, "mlp.fc1.bias", 1, 1, F, 1, 1, 1)                                              \
    X(fc2_w, "mlp.fc2.weight", 1, 2, H, F, 1, 1)                                            \
    X(fc2_b, "mlp.fc2.bias", 1, 1, H, 1, 1, 1)                                              \
    X(ada_w, "adaLN_modulation.1.weight", 1, 2, 6 * H, H, 1, 1)                             \
    X(ada_b, "adaLN_modulation.1.bias", 1, 1, 6 * H, 1, 1, 1)
#define DIT_PARAMS_TAIL(X)                                                                  \
    X(f_w, "final_layer.linear.weight", 1, 2, P * P * COUT, H, 1, 1)                        \
    X(f_b, "final_layer.linear.bias", 1, 1, P * P * COUT, 1, 1, 1)                          \
    X(f_ada_w, "final_layer.adaLN_modulation.1.weight", 1, 2, 2 * H, H, 1, 1)               \
    X(f_ada_b, "final_layer.adaLN_modulation.1.bias", 1, 1, 2 * H, 1, 1, 1)

// The activation list, written once: X(field, floats per sample) of the model's own buffers and of each block's,
// with S = T (tokens), the same names as above, and ATT = the attention's saved floats per sample (the
// backend's choice, ops.h). All live in one arena sized for `batch` samples.
#define DIT_ACTS(X)                                                                          \
    X(tokens, T * CIN * P * P)  /* patchified input */                                       \
    X(x0, T * H)                /* embedded tokens + positions (block 0's input) */          \
    X(t_freq, DIT_FREQ_DIM)     /* sinusoidal timestep embedding */                          \
    X(t_h, H) X(t_act, H) X(t_emb, H) /* mlp.0 output, its SiLU, mlp.2 output */             \
    X(c, H) X(c_silu, H)        /* conditioning and SiLU(c), shared by every adaLN */         \
    X(f_mod, 2 * H)             /* final adaLN: shift, scale */                              \
    X(lnf, T * H) X(lnf_mean, T) X(lnf_rstd, T)                                              \
    X(f_out, T * P * P * COUT)  /* final linear output (tokens) */                           \
    /* backward scratch */                                                                   \
    X(d_x, T * H) X(d_branch, T * H) X(d_ln, T * H) X(d_attn_y, T * H) X(d_qkv, T * 3 * H)   \
    X(d_fc, T * (CIN * P * P > F ? CIN * P * P : F)) /* also the input tokens' gradient */  \
    X(d_mod, 6 * H) X(d_c, H) X(d_tmp_h, H) X(d_f_out, T * P * P * COUT)
#define DIT_BLOCK_ACTS(X)                                                                    \
    X(mod, 6 * H)               /* adaLN: shift/scale/gate for attention, then for the MLP */ \
    X(ln1, T * H) X(ln1_mean, T) X(ln1_rstd, T)                                              \
    X(qkv, T * 3 * H)                                                                        \
    X(att, ATT)                 /* the attention's saved statistics */                       \
    X(attn_y, T * H)            /* heads concatenated */                                     \
    X(proj, T * H)                                                                           \
    X(x_mid, T * H)             /* after the attention residual */                           \
    X(ln2, T * H) X(ln2_mean, T) X(ln2_rstd, T)                                              \
    X(fc1, T * F) X(gelu, T * F) X(fc2, T * H)                                               \
    X(out, T * H)               /* block output (the Dispersive Loss reads this) */

// One named tensor inside the parameter allocation.
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[4];
    size_t offset, numel;
    int trainable;     // pos_embed is frozen
} ParamInfo;

#define DIT_FIELD(field, ...) float *field;
typedef struct DitBlockWeights { DIT_BLOCK_PARAMS(DIT_FIELD) } DitBlockWeights;
// Pointers to every tensor, bound either to the parameters or to their gradients (y_table NULL if unconditional).
typedef struct { DIT_PARAMS_HEAD(DIT_FIELD) DIT_PARAMS_TAIL(DIT_FIELD) DitBlockWeights *blk; } DitWeights;
typedef struct { DIT_BLOCK_ACTS(DIT_FIELD) } DitBlockActs;
typedef struct {
    int batch;                  // how many samples the arena holds
    float *arena;               // every activation below, carved from one allocation
    DIT_ACTS(DIT_FIELD)
    DitBlockActs *blk;
} DitActs;
#undef DIT_FIELD

typedef struct {
    DitConfig cfg;
    const Ops *ops;
    int n_params;
    ParamInfo *info;
    size_t total;               // floats in the parameter allocation
    float *params, *grads;      // device memory, same layout
    DitWeights w, g;            // bound to params / grads
    DitActs a;
    int last_batch;             // batch of the last forward (backward uses it)
    const int *last_y;          // device labels of the last forward (backward's embedding gradient)
    double *block_grad_sumsq;   // NULL, or [depth] (host): backward stores ||dL/d(block k output)||^2 as it arrives
                                // from above, before extra_block_grads[k] is added (the Dispersive monitor reads it)
} Dit;

// Parses "S/2", "B/4", "XL/8" ... into depth/hidden/heads/patch; returns 0 if unknown.
int dit_variant_parse(const char *name, DitConfig *cfg);
int dit_num_tokens(const DitConfig *cfg);
int dit_out_channels(const DitConfig *cfg);
// A one-line description of what is wrong with cfg, or NULL if it is valid.
const char *dit_config_error(const DitConfig *cfg);

// The parameter registry of a config without allocating anything: [*n_params] entries (caller frees), *total
// floats in the parameter allocation. Fatal one line if the config is invalid.
ParamInfo *dit_layout(const DitConfig *cfg, int *n_params, size_t *total);
Dit *dit_create(const DitConfig *cfg, const Ops *ops);
void dit_free(Dit *m);
// Reference initialisation (SPEC §2), deterministic in seed; also fills the frozen pos_embed.
void dit_init(Dit *m, uint64_t seed);
const ParamInfo *dit_param(const Dit *m, const char *name);
size_t dit_trainable_count(const Dit *m);

// Makes the activation arena hold `batch` samples (reallocates only when it grows).
void dit_reserve(Dit *m, int batch);
// out [B, Cout, H, W] = model(x [B, C, H, W], t [B], y [B] labels or NULL if unconditional): all device memory.
// The labels must be in 0..num_classes (num_classes = the null class): dit_check_labels on the host first. y must
// stay valid until dit_backward.
void dit_forward(Dit *m, float *out, const float *x, const float *t, const int *y, int B);
// Fatal (one line naming `what`) unless every host label y[0..B) is in 0..num_classes.
void dit_check_labels(const DitConfig *cfg, const int *y, int B, const char *what);
// Gradients of the last forward. d_out [B, Cout, H, W]. extra_block_grads: NULL or depth pointers
// (each NULL or [B, T, H]) added to the gradient of that block's output (the Dispersive Loss enters
// here). d_x: NULL or [B, C, H, W] receives the gradient w.r.t. the input. Parameter gradients accumulate.
void dit_backward(Dit *m, const float *d_out, float *const *extra_block_grads, float *d_x);
void dit_zero_grad(Dit *m);

// Host helpers the tests and the twin comparison use: the timestep embedding [B, 256] of host t (cos half
// first; the timestep_embed op on the CPU) and the 2-D position embedding [gh*gw, H].
void dit_timestep_embedding(float *out, const float *t, int B);
void dit_pos_embed_2d(float *out, int H, int gh, int gw);
// Matrix-multiply FLOPs of one forward pass of B samples, 2 per multiply-add (a training step is ~3x).
double dit_forward_flops(const DitConfig *cfg, int B);
