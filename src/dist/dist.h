// Data parallelism over processes (docs/distributed.md): MPI in a build with `make MPI=1`, started by
// `mpirun` or `srun`; without MPI in the build, or run without a launcher, one process of rank 0 of 1 and every
// call below is a no-op. The gradient all-reduce and the Dispersive Loss's all-gather are named places where
// device memory crosses to the host and back (the CPU devices); on the CUDA device of an MPI + CUDA build they
// stay on the GPU and go through NCCL (dist.c; not yet run on a GPU).
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "ops/ops.h"

// MPI_Init when launched by mpirun / srun (their environment says so), else a single process. Installs the error
// path: ddm_fatal on any rank prints its line tagged with the rank and aborts the whole job.
void dist_init(int *argc, char ***argv);
void dist_finalize(void);
int dist_rank(void);          // 0 .. dist_size() - 1
int dist_size(void);          // 1 without MPI
int dist_local_size(void);    // ranks on this machine (for the default thread count)
// "" in a single process, else "MPI, N ranks" style description for logs.
const char *dist_describe(void);

// 1 when training averages its gradients over ranks: more than one rank, or (an MPI + CUDA build) DDM_NCCL=1,
// which sends a single rank's gradients through NCCL too, the test of that path one GPU allows.
int dist_reduces(void);
// dev [n] (device memory of o) becomes the mean over the ranks, with the same bits on every rank: summed on rank 0
// (in MPI's fixed order for a given rank count), then broadcast. host: scratch of n floats.
void dist_mean_dev(const Ops *o, float *dev, size_t n, float *host);
// v [n] becomes the mean over the ranks (scalars for the log and the stop decisions), the same on every rank.
void dist_mean_host(double *v, int n);
// 1 on every rank if any rank passes a non-zero flag (a stop request): all ranks stop at the same step.
int dist_any(int flag);
// global [size * n] (device) = the ranks' local [n] (device) in rank order; host_local [n], host_global [size * n]
// are scratch.
void dist_allgather_dev(const Ops *o, const float *local, float *global, size_t n, float *host_local,
                        float *host_global);
// Fatal (naming the ranks that differ) unless `bytes` of data are the same on every rank: the replicas check.
void dist_check_same(const void *data, size_t bytes, const char *what);
