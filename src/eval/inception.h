// Inception-v3 as the feature extractor of the standard FID (forward only): the 2048-d global average
// pool after Mixed_7c, for images in [-1, 1] of any size, bilinearly resized to 299x299 as pytorch-fid
// does (F.interpolate, mode 'bilinear', align_corners=False; 1-channel images repeated to 3 channels).
//
// Two flavours of the same weights (torchvision parameter names, see tools/inception_convert.py):
//   INCEPTION_FID: pytorch-fid's FIDInceptionA / C / E_1 / E_2 blocks, the port of the TensorFlow FID
//     graph (2015-12-05 weights): the 3x3 average pools of the A, C and E blocks do not count the
//     padding (count_include_pad=False) and Mixed_7c's pool branch is a 3x3 max pool.
//   INCEPTION_TORCHVISION: torchvision's inception_v3 blocks (average pools count the padding).
// Every convolution is BasicConv2d: conv without bias, BatchNorm (eps 0.001, running statistics, folded
// into the weights at load) and ReLU. Convolutions are im2col + sgemm on channels-last activations;
// several images run in parallel (OpenMP, one image per thread, single-threaded BLAS inside).
#pragma once

#define INCEPTION_DIM 2048
#define INCEPTION_SIZE 299

typedef enum { INCEPTION_FID, INCEPTION_TORCHVISION } InceptionFlavour;

typedef struct Inception Inception;

// "fid" or "torchvision" -> the flavour; -1 otherwise.
int inception_flavour_parse(const char *s);
const char *inception_flavour_name(InceptionFlavour f);

// Reads the 94 convolutions' tensors (<layer>.conv.weight [out, in, kh, kw], <layer>.bn.weight, .bn.bias,
// .bn.running_mean, .bn.running_var [out]; any other tensor is ignored). A missing tensor, one of
// another shape or dtype, or an unreadable file: fatal, one line naming the file and the tensor. If the
// file's metadata names a flavour ("flavour") other than f, one warning line.
Inception *inception_load(const char *path, InceptionFlavour f);
void inception_free(Inception *m);

// feats[n, 2048] for imgs[n, c, h, w] (c = 1 or 3, else fatal), values in [-1, 1].
void inception_features(const Inception *m, const float *imgs, int n, int c, int h, int w, float *feats);
