#include "dist/dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

#ifdef DDM_MPI
#include <mpi.h>
#ifdef DDM_CUDA
#include <nccl.h>
#include "ops/cuda/cuda_backend.h"
#endif

static int g_rank = 0, g_size = 1, g_local = 1, g_local_rank = 0, g_mpi = 0;
#ifdef DDM_CUDA
static ncclComm_t g_nccl;
static int g_nccl_ready;
#endif
static char g_desc[64] = "";
static char g_tag[32];

// Launched by mpirun (Open MPI, MPICH) or srun? Only then is MPI started, so the same binary run by hand is a
// plain single process.
static int launched(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_NUM_TASKS", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

static void abort_job(void) { MPI_Abort(MPI_COMM_WORLD, 1); }

static void check(int rc, const char *what) {
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        ddm_fatal("MPI %s failed: %s", what, msg);
    }
}

void dist_init(int *argc, char ***argv) {
    if (!launched()) return;
    MPI_Init(argc, argv);
    g_mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &g_local);
    MPI_Comm_rank(local, &g_local_rank);
    MPI_Comm_free(&local);
#ifdef DDM_CUDA
    ops_cuda_set_device_index(g_local_rank);   // one GPU per rank on each machine
#endif
    snprintf(g_desc, sizeof g_desc, "MPI, %d ranks (%d on this machine)", g_size, g_local);
    if (g_size > 1) {
        snprintf(g_tag, sizeof g_tag, "[rank %d of %d] ", g_rank, g_size);
        ddm_fatal_hooks(g_tag, abort_job);   // one rank's error ends the whole job, no rank left waiting
    }
}

void dist_finalize(void) {
#ifdef DDM_CUDA
    if (g_nccl_ready) ncclCommDestroy(g_nccl);
    g_nccl_ready = 0;
#endif
    if (g_mpi) MPI_Finalize();
    g_mpi = 0;
}

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_local_size(void) { return g_local; }
const char *dist_describe(void) { return g_desc; }

#ifdef DDM_CUDA
// On the CUDA device the gradients and the gathered features stay in GPU memory: NCCL (initialised through MPI)
// reduces and gathers them there, on the legacy default stream every CUDA op runs on (so it is ordered after the
// backward pass and before the optimizer, with no host synchronisation). DDM_NCCL=1 puts a single rank through
// NCCL too: the test of this path that one GPU allows. Not overlapped with the backward pass (docs/distributed.md).

static void nccl_check(ncclResult_t r, const char *what) {
    if (r != ncclSuccess) ddm_fatal("NCCL %s failed: %s", what, ncclGetErrorString(r));
}

static int nccl_forced(void) {
    const char *e = getenv("DDM_NCCL");
    return e && !strcmp(e, "1");
}

static int use_nccl(const Ops *o) {
    if (strcmp(o->device, "cuda") || (g_size == 1 && !nccl_forced())) return 0;
    if (!g_nccl_ready) {
        ncclUniqueId id;
        if (g_rank == 0) nccl_check(ncclGetUniqueId(&id), "id");
        if (g_mpi) check(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD), "broadcast of the NCCL id");
        nccl_check(ncclCommInitRank(&g_nccl, g_size, id, g_rank), "communicator set-up");
        g_nccl_ready = 1;
        if (g_rank == 0) fprintf(stderr, "ddm: gradients all-reduced by NCCL on the GPUs (%d ranks)\n", g_size);
    }
    return 1;
}
#endif

int dist_reduces(void) {
#ifdef DDM_CUDA
    if (nccl_forced()) return 1;
#endif
    return g_size > 1;
}

void dist_mean_dev(const Ops *o, float *dev, size_t n, float *host) {
#ifdef DDM_CUDA
    // ncclAvg: the sum and the division in one pass; every rank receives the same bits (checked at checkpoints)
    if (use_nccl(o)) { nccl_check(ncclAllReduce(dev, dev, n, ncclFloat32, ncclAvg, g_nccl, 0), "all-reduce"); return; }
#endif
    if (g_size == 1) return;
    ops_download_f32(o, host, dev, n);
    // in chunks below INT_MAX elements; rank 0 sums, then everyone takes rank 0's bits
    const size_t chunk = (size_t)1 << 28;
    for (size_t s = 0; s < n; s += chunk) {
        int k = (int)(n - s < chunk ? n - s : chunk);
        check(MPI_Reduce(g_rank ? host + s : MPI_IN_PLACE, host + s, k, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD), "reduce");
        check(MPI_Bcast(host + s, k, MPI_FLOAT, 0, MPI_COMM_WORLD), "broadcast");
    }
    float inv = 1.0f / (float)g_size;
    for (size_t i = 0; i < n; i++) host[i] *= inv;
    ops_upload_f32(o, dev, host, n);
}

void dist_mean_host(double *v, int n) {
    if (g_size == 1) return;
    check(MPI_Reduce(g_rank ? v : MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD), "reduce");
    check(MPI_Bcast(v, n, MPI_DOUBLE, 0, MPI_COMM_WORLD), "broadcast");
    for (int i = 0; i < n; i++) v[i] /= g_size;
}

int dist_any(int flag) {
    if (g_size == 1) return flag != 0;
    int in = flag != 0, out = 0;
    check(MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "allreduce");
    return out;
}

void dist_allgather_dev(const Ops *o, const float *local, float *global, size_t n, float *host_local,
                        float *host_global) {
#ifdef DDM_CUDA
    if (use_nccl(o)) { nccl_check(ncclAllGather(local, global, n, ncclFloat32, g_nccl, 0), "all-gather"); return; }
#endif
    if (g_size == 1) { o->copy(global, local, n); return; }
    if (n > (size_t)1 << 30) ddm_fatal("all-gather of %zu floats per rank is too large", n);
    ops_download_f32(o, host_local, local, n);
    check(MPI_Allgather(host_local, (int)n, MPI_FLOAT, host_global, (int)n, MPI_FLOAT, MPI_COMM_WORLD), "allgather");
    ops_upload_f32(o, global, host_global, n * g_size);
}

void dist_check_same(const void *data, size_t bytes, const char *what) {
    if (g_size == 1) return;
    uint64_t h = 1469598103934665603ull;   // FNV-1a of the bytes
    for (size_t i = 0; i < bytes; i++) h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ull;
    uint64_t *all = xmalloc((size_t)g_size * sizeof(uint64_t));
    check(MPI_Allgather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD), "allgather");
    for (int r = 1; r < g_size; r++)
        if (all[r] != all[0]) ddm_fatal("%s differ between rank 0 and rank %d (the replicas diverged)", what, r);
    free(all);
}

#else   // a build without MPI: one process

void dist_init(int *argc, char ***argv) { (void)argc; (void)argv; }
void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
int dist_local_size(void) { return 1; }
const char *dist_describe(void) { return ""; }
int dist_reduces(void) { return 0; }
void dist_mean_dev(const Ops *o, float *dev, size_t n, float *host) { (void)o; (void)dev; (void)n; (void)host; }
void dist_mean_host(double *v, int n) { (void)v; (void)n; }
int dist_any(int flag) { return flag != 0; }
void dist_allgather_dev(const Ops *o, const float *local, float *global, size_t n, float *host_local,
                        float *host_global) {
    (void)host_local; (void)host_global;
    o->copy(global, local, n);
}
void dist_check_same(const void *data, size_t bytes, const char *what) { (void)data; (void)bytes; (void)what; }

#endif
