// A small CNN classifier trained on the diffusion model's own domain (Fashion-MNIST): its
// penultimate features (global-average-pooled, before the last linear layer) are the feature space
// of the project's domain "FID" (SPEC §2 Evaluation: a Frechet distance on the features of a
// classifier trained on the same domain).
//
// Architecture string: comma-separated stages, a number = conv3x3 ('same') -> BatchNorm -> ReLU
// with that many output channels, "M" = 2x2 max-pool; then global average pool (the features) and
// linear(features -> classes). Default CLASSIFIER_DEFAULT_ARCH.
#pragma once
#include <stdint.h>
#include "data/dataset.h"

#define CLASSIFIER_FORMAT "ddm-classifier-1"
#define CLASSIFIER_DEFAULT_ARCH "32,32,M,64,64,M,128"
#define CLASSIFIER_MAX_LAYERS 32

typedef struct {
    int is_pool;        // 1: max-pool 2x2; 0: conv3x3-BN-ReLU
    int cin, cout;      // channels in/out (equal for a pool)
    int h, w;           // input spatial size
    long w_off, g_off, b_off; // conv weight [cout, cin, 3, 3], BN gamma, BN beta: offsets into params
    long rm_off, rv_off;      // running mean / var: offsets into stats
} ClassifierLayer;

typedef struct {
    char name[32];      // PyTorch-style: "conv0.weight", "bn0.weight", "bn0.running_mean", "fc.bias", ...
    int ndim;
    int64_t shape[4];
    long off, size;     // into params, or into stats when stat
    int stat;           // a BN running statistic (not trained by gradient)
    int decay;          // weight decay applies (conv and linear weights)
} ClassifierParam;

typedef struct Classifier {
    char arch[256];
    int channels, height, width, classes;
    int n_layers;
    ClassifierLayer layers[CLASSIFIER_MAX_LAYERS];
    int feat_dim, feat_h, feat_w; // channels and spatial size at the global average pool
    long fc_w_off, fc_b_off;
    long n_params, n_stats;
    float *params;      // all trainable parameters, flat
    float *stats;       // BN running mean/var, flat
    int n_tensors;
    ClassifierParam tensors[5 * CLASSIFIER_MAX_LAYERS + 2]; // in file order
    float test_accuracy; // recorded by training or by the caller; < 0 if unknown
    void *work;          // cached float workspace
    int work_n;
} Classifier;

typedef struct {
    int epochs;          // 20
    int batch;           // 128
    float lr;            // peak learning rate (SGD, Nesterov momentum), 0.08
    float momentum;      // 0.9
    float weight_decay;  // 5e-4, on conv/linear weights
    int warmup;          // linear warmup steps, then cosine to 0; 200
    uint64_t seed;
    int augment;         // random horizontal flip and +-2 px shifts
    int n_train;         // use the first n_train training images (0 = all)
    const Dataset *test; // evaluated after every epoch when not NULL
    // called after every epoch (may be NULL)
    void (*on_epoch)(void *ctx, int epoch, int epochs, double train_loss, double train_acc, double test_acc,
                     double seconds);
    void *ctx;
} ClassifierOpts;

ClassifierOpts classifier_default_opts(void);
// Fatal (one line) on a malformed architecture string or spatial size too small for its pools.
Classifier *classifier_create_arch(const char *arch, int channels, int height, int width, int classes,
                                   uint64_t seed);
Classifier *classifier_create(int channels, int height, int width, int classes); // default arch, seed 0
void classifier_free(Classifier *c);
void classifier_train(Classifier *c, const Dataset *train, const ClassifierOpts *o);
float classifier_accuracy(Classifier *c, const Dataset *d);                       // eval mode, in [0, 1]
// Eval-mode logits [n, classes] and penultimate features [n, feat_dim]; imgs [n, C, H, W]. Either
// output may be NULL.
void classifier_forward(Classifier *c, const float *imgs, int n, float *logits, float *feats);
void classifier_features(Classifier *c, const float *imgs, int n, float *feats);
int classifier_feature_dim(const Classifier *c);
// safetensors (atomic): PyTorch-layout tensors and metadata format, architecture, channels, height,
// width, classes, feature_dim, test_accuracy.
void classifier_save(const Classifier *c, const char *path);
Classifier *classifier_load(const char *path);

// For the tests: one train-mode step in float64 on params/stats given as doubles (the layouts of
// c->params and c->stats). Returns the mean cross-entropy over the n images and, if grad is not
// NULL, writes its gradient w.r.t. params. Updates stats (running statistics) like training does.
double classifier_loss_grad_f64(const Classifier *c, const double *params, double *stats, const float *imgs,
                                const int *labels, int n, double *grad);
// One float32 SGD step (train mode, Nesterov momentum as torch.optim.SGD, velocity [n_params]) on a
// batch imgs [n, C, H, W]; returns the mean loss before the step and, if correct is not NULL, the
// number of the batch's images classified correctly. Used by classifier_train and the tests.
double classifier_step(Classifier *c, const float *imgs, const int *labels, int n, float lr, float momentum,
                       float weight_decay, float *velocity, int *correct);
