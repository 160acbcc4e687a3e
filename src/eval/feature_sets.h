// Image sets -> classifier features -> Fréchet distance: the pieces `ddm eval` and the training loop's
// periodic evaluation (`ddm train --eval-every`) share.
#pragma once
#include <stdint.h>
#include "data/dataset.h"
#include "eval/classifier.h"

// n images of a split, drawn without replacement with a fixed seed ([n, C, H, W]; caller frees).
float *dataset_draw(const Dataset *d, int n, uint64_t seed);
// Penultimate features of n images ([n, dim]; caller frees), in chunks so memory stays bounded.
float *classifier_features_all(Classifier *cls, const float *imgs, int n);
// Fréchet distance between the Gaussian fits of two feature sets ([n1, dim] and [n2, dim]); warns
// (one line, naming `what`; NULL = no warning) when the second set has no more samples than dimensions.
double fd_of_features(const float *f1, int n1, const float *f2, int n2, int dim, const char *what);
