// Deterministic random numbers. Streams are derived from (seed, stream id) so that any step of a
// run can regenerate its noise from the step number alone: that is what makes --resume bit-exact.
#pragma once
#include <stdint.h>

typedef struct { uint64_t s[4]; int has_spare; float spare; } Rng;

void rng_init(Rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(Rng *r);
float rng_uniform(Rng *r);           // [0, 1)
float rng_normal(Rng *r);            // N(0, 1), Box-Muller in double
int rng_int(Rng *r, int n);          // uniform in [0, n)
void rng_normal_fill(Rng *r, float *x, long n);
void rng_permutation(Rng *r, int *perm, int n); // Fisher-Yates
