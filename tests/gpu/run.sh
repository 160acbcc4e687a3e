#!/usr/bin/env bash
# Every GPU check and the GPU benchmark, in one run (a few minutes on one H100/H200): the op tests, the training
# step against the CPU, the end-to-end CLI tests (200-step Fashion-MNIST curves, resume, sampling, checkpoints
# against PyTorch), NCCL with one rank (tests/gpu/test_nccl.sh), then `ddm bench --device cuda` (SiT-B/2 and SiT-XL/2 beside the PyTorch twin, eager and
# torch.compile). Logs go to OUTDIR (at most 8 files); the last lines printed are the summary.
#
#   bash tests/gpu/run.sh OUTDIR
#
# Binaries: from .gpu/ when tests/gpu/bundle.sh prepared it (a GPU machine without ddm's build dependencies),
# else built here with `make cuda`. Environment: SKIP_BENCH=1 skips the benchmark, BENCH_COMPILE=0 the
# torch.compile twin, BENCH_ARGS adds flags to `ddm bench`, RUN_BUDGET (seconds, default 560) bounds the whole run
# so that it ends, summary included, inside a 600-second call: each step gets what is left of it.
set -u
OUT=${1:?usage: bash tests/gpu/run.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/../.."
exec > >(tee "$OUT/run.log") 2>&1
T0=$(date +%s)
DEADLINE=$((T0 + ${RUN_BUDGET:-560}))
echo "== tests/gpu/run.sh $(date -u +%FT%TZ) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3

# ---- the binaries
if [ -x .gpu/bin/ddm ]; then
    LIBS=/tmp/ddm-gpu-libs
    rm -rf $LIBS && mkdir -p $LIBS && tar -C $LIBS -xJf .gpu/lib.tar.xz
    # cuBLAS 13: the toolkit's, else the one PyTorch's wheels bring
    CUBLAS=""
    for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
             $(python3 -c "import nvidia, os; print(' '.join(os.path.join(p, q, 'lib') for p in nvidia.__path__ for q in os.listdir(p)))" 2>/dev/null); do
        if [ -e "$d/libcublas.so.13" ]; then CUBLAS=$d; break; fi
    done
    echo "bundle: libraries in $LIBS, cuBLAS from ${CUBLAS:-(not found)}"
    BIN=/tmp/ddm-gpu-bin
    rm -rf $BIN && mkdir -p $BIN/tests/gpu
    # wrappers: only ddm's processes see the bundled libraries (Python keeps its own)
    for b in .gpu/bin/ddm* .gpu/bin/tests/gpu/*; do
        rel=${b#.gpu/bin/}
        printf '#!/bin/sh\nLD_LIBRARY_PATH=%s:%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' "$LIBS" "$CUBLAS" "$PWD/$b" > $BIN/$rel
        chmod +x $BIN/$rel
    done
    DATA=$PWD/.gpu/data
    export DDM_TWIN_PYTHON="env -u LD_LIBRARY_PATH python3"
else
    echo "== make cuda (no .gpu bundle)"
    make -j"$(nproc)" cuda > "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; echo "run.sh: the CUDA build failed"; exit 1; }
    BIN=build
    DATA=${DATA:-/usr/share/datasets/fashion-mnist}
    if command -v mpicc > /dev/null && make -j"$(nproc)" cuda MPI=1 >> "$OUT/build.log" 2>&1; then
        cp build-mpi/ddm build/ddm-mpi
    fi
fi
$BIN/ddm --help > /dev/null 2>&1 || { echo "run.sh: $BIN/ddm does not start:"; $BIN/ddm --help 2>&1 | head -5; exit 1; }

declare -A RES
run_step() {   # run_step NAME TIMEOUT LOG cmd...: runs, keeps the log, records the closing line or the exit status
    local name=$1 limit=$2 log=$3; shift 3
    local t=$(date +%s)
    [ $((DEADLINE - t - 15)) -lt "$limit" ] && limit=$((DEADLINE - t - 15))
    if [ "$limit" -lt 20 ]; then RES[$name]="not run: the time budget is spent"; echo "== $name: no time left"; return; fi
    echo "== $name (at most $limit s)"
    timeout "$limit" "$@" > "$log" 2>&1
    local rc=$?
    tail -n 25 "$log"
    local line
    line=$(grep -Eo '[0-9]+ passed, [0-9]+ failed|skipped: no GPU' "$log" | tail -1)
    RES[$name]="rc $rc, ${line:-no summary line}, $(( $(date +%s) - t )) s"
}

# ---- the tests
run_step test_cuda_ops 150 "$OUT/test_cuda_ops.log" env SHOW=1 $BIN/tests/gpu/test_cuda_ops
run_step test_cuda_step 90 "$OUT/test_cuda_step.log" env SHOW=1 $BIN/tests/gpu/test_cuda_step
run_step test_cuda_cli 240 "$OUT/test_cuda_cli.log" env DDM=$BIN/ddm PY=python3 DATA=$DATA \
    bash tests/gpu/test_cuda_cli.sh "$OUT/curves.csv"
run_step test_nccl 90 "$OUT/test_nccl.log" env DDM=$BIN/ddm DDM_MPI=$BIN/ddm-mpi PY=python3 DATA=$DATA \
    bash tests/gpu/test_nccl.sh

# ---- the benchmark
if [ "${SKIP_BENCH:-0}" != 1 ]; then
    run_step bench 330 "$OUT/bench.log" $BIN/ddm bench --device cuda --precision bf16 --model sit --steps 10 --warmup 3 \
        --twin-compile ${BENCH_COMPILE:-1} \
        --json "$OUT/bench.json" ${BENCH_ARGS:-}
fi

echo
echo "== summary ($(( $(date +%s) - T0 )) s)"
for k in test_cuda_ops test_cuda_step test_cuda_cli test_nccl bench; do [ -n "${RES[$k]:-}" ] && echo "  $k: ${RES[$k]}"; done
grep -A6 '^config' "$OUT/bench.log" 2>/dev/null
