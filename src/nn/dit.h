// The DiT / SiT backbone (SPEC §2): patch embedding + frozen 2-D sin-cos positions, timestep and label
// embedders, adaLN-Zero transformer blocks, final layer, unpatchify. Forward and backward over the op
// interface; parameters live in one allocation under their PyTorch state-dict names and layouts.
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

// One named tensor inside the parameter allocation.
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[4];
    size_t offset, numel;
    int trainable;     // pos_embed is frozen
} ParamInfo;

// Pointers to every tensor, bound either to the parameters or to their gradients.
typedef struct {
    float *x_w, *x_b;                 // x_embedder.proj [H, C, p, p], [H]
    float *pos;                       // pos_embed [1, T, H]
    float *t0_w, *t0_b, *t2_w, *t2_b; // t_embedder.mlp.0 [H, 256], mlp.2 [H, H]
    float *y_table;                   // y_embedder.embedding_table [ncls+1, H] or NULL
    float *f_ada_w, *f_ada_b;         // final_layer.adaLN_modulation.1 [2H, H]
    float *f_w, *f_b;                 // final_layer.linear [p*p*Cout, H]
    struct DitBlockWeights {
        float *qkv_w, *qkv_b;         // [3H, H]
        float *proj_w, *proj_b;       // [H, H]
        float *fc1_w, *fc1_b;         // [F, H]
        float *fc2_w, *fc2_b;         // [H, F]
        float *ada_w, *ada_b;         // [6H, H]
    } *blk;
} DitWeights;

typedef struct {
    float *mod;                 // [B, 6H] adaLN output: shift/scale/gate for attention, then for MLP
    float *ln1, *ln1_mean, *ln1_rstd;   // [B,T,H], [B,T], [B,T]
    float *qkv;                 // [B, T, 3H]
    float *att;                 // [B, NH, T, T] softmax probabilities
    float *attn_y;              // [B, T, H] heads concatenated
    float *proj;                // [B, T, H]
    float *x_mid;               // [B, T, H] after the attention residual
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc1;                 // [B, T, F] pre-activation
    float *gelu;                // [B, T, F]
    float *fc2;                 // [B, T, H]
    float *out;                 // [B, T, H] block output (the Dispersive Loss reads this)
} DitBlockActs;

typedef struct {
    int batch;                  // how many samples the buffers hold
    float *tokens;              // [B, T, C*p*p] patchified input
    float *x0;                  // [B, T, H] embedded tokens + positions (input to block 0)
    float *t_freq;              // [B, 256]
    float *t_h, *t_act, *t_emb; // [B, H] mlp.0 output, its SiLU, mlp.2 output
    float *c, *c_silu;          // [B, H] conditioning and SiLU(c) (shared by every adaLN)
    DitBlockActs *blk;
    float *f_mod;               // [B, 2H]
    float *lnf, *lnf_mean, *lnf_rstd;
    float *f_out;               // [B, T, p*p*Cout]
    // backward scratch
    float *d_x, *d_branch, *d_ln, *d_attn_y, *d_qkv, *d_att, *d_fc, *d_mod, *d_c, *d_tmp_h, *d_f_out;
} DitActs;

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
    double *block_grad_sumsq;   // NULL, or [depth]: backward stores ||dL/d(block k output)||^2 as it arrives from
                                // above, before extra_block_grads[k] is added (the Dispersive monitor reads it)
    int *last_y;                // host copy of the labels of the last forward
} Dit;

// Parses "S/2", "B/4", "XL/8" ... into depth/hidden/heads/patch; returns 0 if unknown.
int dit_variant_parse(const char *name, DitConfig *cfg);
int dit_num_tokens(const DitConfig *cfg);
int dit_out_channels(const DitConfig *cfg);
// A one-line description of what is wrong with cfg, or NULL if it is valid.
const char *dit_config_error(const DitConfig *cfg);

Dit *dit_create(const DitConfig *cfg, const Ops *ops);
void dit_free(Dit *m);
// Reference initialisation (SPEC §2), deterministic in seed; also fills the frozen pos_embed.
void dit_init(Dit *m, uint64_t seed);
const ParamInfo *dit_param(const Dit *m, const char *name);
size_t dit_trainable_count(const Dit *m);

// Makes the activation buffers hold `batch` samples (reallocates only when it grows).
void dit_reserve(Dit *m, int batch);
// out [B, Cout, H, W]; x [B, C, H, W] on the device; t [B] and y [B] on the host (y NULL if unconditional).
void dit_forward(Dit *m, float *out, const float *x, const float *t, const int *y, int B);
// Gradients of the last forward. d_out [B, Cout, H, W]. extra_block_grads: NULL or depth pointers
// (each NULL or [B, T, H]) added to the gradient of that block's output (the Dispersive Loss enters
// here). d_x: NULL or [B, C, H, W] receives the gradient w.r.t. the input. Parameter gradients accumulate.
void dit_backward(Dit *m, const float *d_out, float *const *extra_block_grads, float *d_x);
void dit_zero_grad(Dit *m);

// Helpers the tests and the twin comparison use.
void dit_timestep_embedding(float *out, const float *t, int B);           // [B, 256], cos half first
void dit_pos_embed_2d(float *out, int H, int gh, int gw);                 // [gh*gw, H]
// Matrix-multiply FLOPs of one forward pass of B samples, 2 per multiply-add (a training step is ~3x).
double dit_forward_flops(const DitConfig *cfg, int B);
