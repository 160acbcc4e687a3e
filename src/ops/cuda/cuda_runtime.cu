// The CUDA backend's runtime: start-up, memory (allocation with accounting, the host<->device copies), the
// scratch buffers, cuBLAS, and the matrix products (`gemm` fp32 or TF32, `gemm_fp32` and `syrk` strict fp32,
// the bf16 table's `gemm`). Everything on the legacy default stream (cuda_common.cuh says why).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unordered_map>
#include "ops/cuda/cuda_backend.h"
#include "ops/cuda/cuda_common.cuh"

static int g_init_done;
static const char *g_init_err;
static char g_init_msg[512];
static cublasHandle_t g_blas;
static int g_tf32 = 1;
static cudaDeviceProp g_prop;

// cuBLAS's workspace, ours so that it is counted and fixed: 32 MiB, the size cuBLAS documents for Hopper.
static void *g_workspace;
static const size_t WORKSPACE_BYTES = (size_t)32 << 20;

// ---------------------------------------------------------------- memory accounting

static std::unordered_map<void *, size_t> *g_sizes;   // live allocations (a pointer: no static constructor)
static size_t g_in_use, g_peak;

static void *raw_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();   // clear the sticky-free error so the message below is the only report
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        ddm_fatal("cuda: out of device memory allocating %.1f MiB (%.1f MiB in use by ddm, %.1f of %.1f MiB free): %s",
                  bytes / 1048576.0, g_in_use / 1048576.0, fr / 1048576.0, tot / 1048576.0, cudaGetErrorString(e));
    }
    if (!g_sizes) g_sizes = new std::unordered_map<void *, size_t>();
    (*g_sizes)[p] = bytes;
    g_in_use += bytes;
    if (g_in_use > g_peak) g_peak = g_in_use;
    return p;
}

static void raw_free(void *p) {
    if (!p) return;
    auto it = g_sizes ? g_sizes->find(p) : std::unordered_map<void *, size_t>::iterator();
    if (!g_sizes || it == g_sizes->end()) DDM_BUG("cuda: free of %p, which this backend did not allocate", p);
    g_in_use -= it->second;
    g_sizes->erase(it);
    CUDA_CHECK(cudaFree(p));
}

// ---------------------------------------------------------------- start-up

static int g_device_index = 0;
extern "C" void ops_cuda_set_device_index(int index) { g_device_index = index < 0 ? 0 : index; }

extern "C" const char *cuda_backend_init(const char *precision) {
    (void)precision;
    if (g_init_done) return g_init_err;
    g_init_done = 1;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        // without a driver the runtime says "driver version is insufficient": say what that usually means
        snprintf(g_init_msg, sizeof g_init_msg, "--device cuda: no usable CUDA GPU on this machine (%s%s)",
                 e == cudaErrorInsufficientDriver ? "no NVIDIA driver, or one older than CUDA 13: " : "",
                 e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
        cudaGetLastError();
        return g_init_err = g_init_msg;
    }
    // device g_device_index mod the count of what CUDA_VISIBLE_DEVICES shows (0, or the process's rank on its
    // machine under mpirun: one GPU per rank); cudaFree(0) creates the context now, so a broken driver is
    // reported here rather than at the first op
    int dev = g_device_index % n;
    if ((e = cudaSetDevice(dev)) != cudaSuccess || (e = cudaFree(0)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&g_prop, dev)) != cudaSuccess) {
        snprintf(g_init_msg, sizeof g_init_msg, "--device cuda: the CUDA runtime failed to start: %s",
                 cudaGetErrorString(e));
        cudaGetLastError();
        return g_init_err = g_init_msg;
    }
    cublasStatus_t s = cublasCreate(&g_blas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(g_init_msg, sizeof g_init_msg, "--device cuda: cuBLAS failed to start: %s", cublasGetStatusString(s));
        return g_init_err = g_init_msg;
    }
    // explicit compute types choose TF32 or not per call (cuda_gemm_rm); no atomics (the default) keeps
    // cuBLAS deterministic on one stream
    CUBLAS_CHECK(cublasSetMathMode(g_blas, CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasSetAtomicsMode(g_blas, CUBLAS_ATOMICS_NOT_ALLOWED));
    g_workspace = raw_alloc(WORKSPACE_BYTES);
    CUBLAS_CHECK(cublasSetWorkspace(g_blas, g_workspace, WORKSPACE_BYTES));
    const char *env = getenv("DDM_CUDA_TF32");
    g_tf32 = !(env && !strcmp(env, "0"));
    fprintf(stderr, "ddm: cuda: device %d: %s, compute capability %d.%d, %d multiprocessors, %.1f GiB\n", dev,
            g_prop.name, g_prop.major, g_prop.minor, g_prop.multiProcessorCount, g_prop.totalGlobalMem / 1073741824.0);
    return g_init_err = NULL;
}

cublasHandle_t cuda_blas(void) { return g_blas; }
int cuda_use_tf32(void) { return g_tf32; }

extern "C" int ops_cuda_set_tf32(int on) {
    int old = g_tf32;
    g_tf32 = on != 0;
    return old;
}
extern "C" int ops_cuda_tf32(void) { return g_tf32; }

extern "C" void ops_cuda_memory(size_t *in_use, size_t *peak, size_t *free_bytes, size_t *total_bytes) {
    size_t fr = 0, tot = 0;
    CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    if (in_use) *in_use = g_in_use;
    if (peak) *peak = g_peak;
    if (free_bytes) *free_bytes = fr;
    if (total_bytes) *total_bytes = tot;
}
extern "C" void ops_cuda_reset_peak(void) { g_peak = g_in_use; }
extern "C" const char *ops_cuda_device_name(void) { return g_prop.name; }

// ---------------------------------------------------------------- the table's memory entries

extern "C" void *cuda_alloc(size_t bytes) {
    // cudaMalloc aligns to 256 bytes (the interface asks for 64); a 0-byte request still gets a distinct pointer
    void *p = raw_alloc(bytes ? bytes : 256);
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 256));
    return p;
}

extern "C" void cuda_free(void *p) { raw_free(p); }

extern "C" void cuda_upload(void *dst, const void *host_src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

extern "C" void cuda_download(void *host_dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

extern "C" void cuda_synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

// Overlapping ranges (memmove semantics, as on the CPU) go through a scratch buffer: cudaMemcpy's are undefined.
extern "C" void cuda_copy(float *dst, const float *src, size_t n) {
    if (!n || dst == src) return;
    size_t bytes = n * sizeof(float);
    if (dst < src + n && src < dst + n) {
        void *tmp = cuda_scratch(SCRATCH_COPY, bytes);
        CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, 0));
        CUDA_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, 0));
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}

extern "C" void cuda_zero(float *p, size_t n) {
    if (n) CUDA_CHECK(cudaMemsetAsync(p, 0, n * sizeof(float), 0));
}

static void *g_scratch[SCRATCH_COUNT];
static size_t g_scratch_bytes[SCRATCH_COUNT];

void *cuda_scratch(int slot, size_t bytes) {
    if (bytes <= g_scratch_bytes[slot]) return g_scratch[slot];
    // the old buffer may still be read by queued work: wait for it before freeing
    if (g_scratch[slot]) {
        CUDA_CHECK(cudaDeviceSynchronize());
        raw_free(g_scratch[slot]);
    }
    size_t grown = bytes + bytes / 4;   // some headroom, so a slowly growing size does not reallocate each call
    g_scratch[slot] = raw_alloc(grown);
    g_scratch_bytes[slot] = grown;
    return g_scratch[slot];
}

// ---------------------------------------------------------------- matrix products

void cuda_gemm_rm(int bf16_inputs, int tf32, int transA, int transB, int M, int N, int K, float alpha, const void *A,
                  int lda, long long strideA, const void *B, int ldb, long long strideB, float beta, float *C, int ldc,
                  long long strideC, int batch) {
    if (M <= 0 || N <= 0 || K <= 0 || batch <= 0) DDM_BUG("cuda_gemm_rm: empty product %d x %d x %d (batch %d)", M, N, K, batch);
    cudaDataType_t t = bf16_inputs ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t ct = bf16_inputs ? CUBLAS_COMPUTE_32F : tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasOperation_t opb = transB ? CUBLAS_OP_T : CUBLAS_OP_N, opa = transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1)
        CUBLAS_CHECK(cublasGemmEx(g_blas, opb, opa, N, M, K, &alpha, B, t, ldb, A, t, lda, &beta, C, CUDA_R_32F, ldc, ct,
                                  CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(g_blas, opb, opa, N, M, K, &alpha, B, t, ldb, strideB, A, t, lda,
                                                strideA, &beta, C, CUDA_R_32F, ldc, strideC, batch, ct,
                                                CUBLAS_GEMM_DEFAULT));
}

__global__ void k_to_bf16(__nv_bfloat16 *dst, const float *src, long rows, long cols, long ld) {
    long n = rows * cols;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long r = i / cols, c = i - r * cols;
        dst[i] = __float2bfloat16_rn(src[r * ld + c]);
    }
}

void cuda_to_bf16(__nv_bfloat16 *dst, const float *src, long rows, long cols, long ld) {
    if (rows <= 0 || cols <= 0) return;
    k_to_bf16<<<cuda_blocks((size_t)(rows * cols), 256), 256>>>(dst, src, rows, cols, ld);
    LAUNCH_CHECK();
}

// K = 0 (or an empty product): C = beta C, and beta = 0 writes zeros without reading C (the BLAS contract).
__global__ void k_scale_matrix(float *C, int M, int N, int ldc, float beta) {
    long n = (long)M * N;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        long r = i / N, c = i - r * N;
        float *p = C + r * ldc + c;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

static void scale_matrix(float *C, int M, int N, int ldc, float beta) {
    k_scale_matrix<<<cuda_blocks((size_t)M * N, 256), 256>>>(C, M, N, ldc, beta);
    LAUNCH_CHECK();
}

extern "C" void cuda_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_matrix(C, M, N, ldc, beta); return; }
    cuda_gemm_rm(0, g_tf32, transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

extern "C" void cuda_gemm_fp32(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_matrix(C, M, N, ldc, beta); return; }
    cuda_gemm_rm(0, 0, transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

// The bf16 table's gemm: each operand rounded to a packed bf16 copy (one pass over it), then a bf16 x bf16 -> fp32
// cuBLAS product. The copies make the rounding ours (nearest even, as the CPU's bf16 GEMM), not the library's.
extern "C" void cuda_bf16_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_matrix(C, M, N, ldc, beta); return; }
    long ra = transA ? K : M, ca = transA ? M : K, rb = transB ? N : K, cb = transB ? K : N;
    __nv_bfloat16 *a16 = (__nv_bfloat16 *)cuda_scratch(SCRATCH_GEMM_A, (size_t)(ra * ca) * sizeof(__nv_bfloat16));
    __nv_bfloat16 *b16 = (__nv_bfloat16 *)cuda_scratch(SCRATCH_GEMM_B, (size_t)(rb * cb) * sizeof(__nv_bfloat16));
    cuda_to_bf16(a16, A, ra, ca, lda);
    cuda_to_bf16(b16, B, rb, cb, ldb);
    cuda_gemm_rm(1, 0, transA, transB, M, N, K, alpha, a16, (int)ca, 0, b16, (int)cb, 0, beta, C, ldc, 0, 1);
}

// Row-major C [N,N], upper triangle (j >= i) = alpha A A^T + beta C, A [N,K] row-major: in cuBLAS's column-major
// view A is A^T [K,N] and the row-major upper triangle is the column-major lower one. Strict fp32.
extern "C" void cuda_syrk(int N, int K, float alpha, const float *A, int lda, float beta, float *C, int ldc) {
    if (N <= 0) return;
    if (K <= 0) { scale_matrix(C, N, N, ldc, beta); return; }
    CUBLAS_CHECK(cublasSsyrk(g_blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, N, K, &alpha, A, lda, &beta, C, ldc));
}

// ---------------------------------------------------------------- the bf16 GEMM peak (for ddm bench)

__global__ void k_fill_random_bf16(__nv_bfloat16 *p, size_t n, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;   // a hash: random-looking, not zeros (zeros run faster)
        h ^= h >> 15; h *= 2246822519u; h ^= h >> 13;
        p[i] = __float2bfloat16_rn((float)(h & 0xffff) / 65536.0f - 0.5f);
    }
}

extern "C" double ops_cuda_bf16_gemm_tflops(int n, int reps) {
    size_t nn = (size_t)n * n;
    __nv_bfloat16 *a = (__nv_bfloat16 *)raw_alloc(nn * 2), *b = (__nv_bfloat16 *)raw_alloc(nn * 2),
                  *c = (__nv_bfloat16 *)raw_alloc(nn * 2);
    k_fill_random_bf16<<<cuda_blocks(nn, 256), 256>>>(a, nn, 1u);
    k_fill_random_bf16<<<cuda_blocks(nn, 256), 256>>>(b, nn, 2u);
    LAUNCH_CHECK();
    float alpha = 1, beta = 0;
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    double best = 0;
    for (int r = -3; r < reps; r++) {   // three warm-up calls: handle set-up, clocks
        CUDA_CHECK(cudaEventRecord(e0, 0));
        CUBLAS_CHECK(cublasGemmEx(g_blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16BF, n, b, CUDA_R_16BF, n,
                                  &beta, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        CUDA_CHECK(cudaEventRecord(e1, 0));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        double tf = 2.0 * n * (double)n * n / (ms * 1e-3) / 1e12;
        if (r >= 0 && tf > best) best = tf;
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    raw_free(a); raw_free(b); raw_free(c);
    return best;
}
