#!/usr/bin/env bash
# CI has no GPU: after `make cuda`, prove that the CUDA build links and runs, that `--device cuda` without a GPU is
# one clear error line and exit status 1, that every GPU test skips cleanly (exit 0, "skipped: no GPU"), and that
# the GPU tests' references and bounds hold when the CPU tables stand in for the GPU (DDM_TEST_DEVICE=cpu). Prints
# one line (not a test-count line: the CPU suite's closing line stays the run's) and exits non-zero on a failure.
set -u
cd "$(dirname "$0")/../.."
fails=()
one_error_line() {   # one_error_line WHAT cmd...: exit 1 and exactly one "ddm: error:" line naming --device cuda
    local what=$1; shift
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 1 ] || [ "$(echo "$err" | grep -c 'ddm: error:')" -ne 1 ] || ! echo "$err" | grep -q -- '--device cuda: no usable CUDA GPU'; then
        fails+=("$what (rc $rc: $err)")
    fi
}
if nvidia-smi -L > /dev/null 2>&1; then
    echo "cuda build check: this machine has a GPU; run tests/gpu/run.sh instead"
    exit 0
fi
./build/ddm train --device tpu --out /tmp/ddm-ci-tpu 2>&1 | grep -q 'this build has: cpu, cpu-isolated, cuda' || fails+=("an unknown device does not name cuda among this build's devices")
one_error_line "ddm train --device cuda" ./build/ddm train --depth 2 --hidden 32 --heads 2 --patch 7 --steps 1 --device cuda --out /tmp/ddm-ci-cuda
one_error_line "ddm sample --device cuda" ./build/ddm sample --ckpt /nonexistent.safetensors --device cuda
one_error_line "ddm bench --device cuda" ./build/ddm bench --device cuda
for t in build/tests/gpu/test_*; do
    case $t in *.d) continue ;; esac
    out=$("$t" 2>&1); rc=$?
    [ $rc -eq 0 ] && echo "$out" | grep -q "skipped: no GPU" || fails+=("$t without a GPU: rc $rc: $out")
done
out=$(bash tests/gpu/test_cuda_cli.sh 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "skipped: no GPU" || fails+=("test_cuda_cli.sh without a GPU: rc $rc: $out")
# the MPI + CUDA build (NCCL), where .ci/run made it: without a GPU it fails the same clean way, and its test skips
if [ -x build-mpi/ddm ] && strings build-mpi/ddm | grep -q "all-reduced by NCCL"; then
    one_error_line "DDM_NCCL=1 ddm train --device cuda (MPI + CUDA build)" env DDM_NCCL=1 ./build-mpi/ddm train \
        --depth 2 --hidden 32 --heads 2 --patch 7 --steps 1 --device cuda --out /tmp/ddm-ci-nccl
    out=$(DDM=build-mpi/ddm DDM_MPI=build-mpi/ddm bash tests/gpu/test_nccl.sh 2>&1); rc=$?
    [ $rc -eq 0 ] && echo "$out" | grep -q "skipped: no GPU" || fails+=("test_nccl.sh without a GPU: rc $rc: $out")
else
    fails+=("no MPI + CUDA build at build-mpi/ddm (make cuda MPI=1)")
fi
for t in test_cuda_ops test_cuda_step; do
    out=$(DDM_TEST_DEVICE=cpu OMP_NUM_THREADS=2 build/tests/gpu/$t 2>&1); rc=$?
    [ $rc -eq 0 ] || fails+=("$t self-test on the CPU tables: rc $rc: $(echo "$out" | tail -5)")
done
if [ ${#fails[@]} -gt 0 ]; then
    printf 'cuda build check FAILED: %s\n' "${fails[@]}"
    exit 1
fi
echo "cuda build check: ok (make cuda and make cuda MPI=1 link; --device cuda without a GPU is one error line, exit 1; the GPU tests skip; their bounds hold on the CPU tables)"
