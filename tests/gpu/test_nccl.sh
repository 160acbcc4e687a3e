#!/usr/bin/env bash
# NCCL on the GPU (issue 16, item 4), as far as one GPU can test it: an MPI + CUDA build (`make cuda MPI=1`) run
# with DDM_NCCL=1 sends a single rank's gradients through ncclAllReduce (ncclAvg) and, with --disp-gather, the
# Dispersive block's features through ncclAllGather; with one rank both are identities, so the weights must be
# bit-identical to the plain CUDA build's. With two or more GPUs and mpirun, 2 ranks (global batch 2B) must follow
# one process with batch 2B within float tolerance, their replicas bit-identical. Skipped (exit 0, one line) without
# a GPU or without the MPI build.
#   DDM=build/ddm DDM_MPI=build-mpi/ddm PY=python3 DATA=<Fashion-MNIST dir> bash tests/gpu/test_nccl.sh
PY=${PY:-python3}
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
DDM_MPI=${DDM_MPI:-build-mpi/ddm}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
D="--data $DATA --threads $(nproc)"

probe=$($DDM train $TINY --batch 2 --steps 1 --device cuda $D --out $TMP/probe 2>&1)
if echo "$probe" | grep -q "no usable CUDA GPU"; then
    echo "test_nccl: skipped: no GPU"; exit 0
fi
if [ ! -x "$DDM_MPI" ] || ! strings "$DDM_MPI" | grep -q "all-reduced by NCCL"; then
    echo "test_nccl: skipped: no MPI + CUDA build at $DDM_MPI (make cuda MPI=1)"; exit 0
fi

# same_weights A B: every tensor of two checkpoints bit-identical
same_weights() {
    $PY - "$1" "$2" <<'EOF'
import sys; sys.path.insert(0, "tools"); import st, numpy as np
a, _ = st.load(sys.argv[1]); b, _ = st.load(sys.argv[2])
diff = [k for k in a if k not in b or a[k].shape != b[k].shape or not np.array_equal(a[k], b[k])]
print(f"  {len(a)} tensors, {len(diff)} differ {diff[:3]}")
sys.exit(0 if a and not diff and len(a) == len(b) else 1)
EOF
}

M="--depth 2 --hidden 64 --heads 4 --patch 4 --batch 16 --steps 20 --log-every 5 --seed 5 --disp infonce_l2 --lr 3e-4"
for gather in "" "--disp-gather"; do
    name=${gather:-plain}
    expect_ok "$name: the CUDA build" $DDM train $M $gather $D --device cuda --out $TMP/a_$name
    expect_ok "$name: one rank through NCCL" sh -c "DDM_NCCL=1 $DDM_MPI train $M $gather $D --device cuda \
        --out $TMP/b_$name > $TMP/b_$name.txt 2>&1"
    check "$name: the log says NCCL" grep -q "all-reduced by NCCL" $TMP/b_$name.txt
    check "$name: weights bit-identical" same_weights $TMP/a_$name/ckpt.safetensors $TMP/b_$name/ckpt.safetensors
done

ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ "$ngpu" -ge 2 ] && command -v mpirun > /dev/null; then
    expect_ok "2 ranks on 2 GPUs" mpirun --allow-run-as-root -np 2 $DDM_MPI train $M --batch 32 $D --device cuda \
        --ckpt-every 10 --out $TMP/two
    expect_ok "one process, batch 32" $DDM train $M --batch 32 $D --device cuda --out $TMP/one
    check "2 ranks follow one process" $PY - $TMP/two/ckpt.safetensors $TMP/one/ckpt.safetensors <<'EOF'
import sys; sys.path.insert(0, "tools"); import st, numpy as np
a, _ = st.load(sys.argv[1]); b, _ = st.load(sys.argv[2])
keys = [k for k in b if not k.startswith("opt.")]
scale = max(float(np.max(np.abs(b[k]))) for k in keys)
worst = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in keys) / scale
print(f"  worst difference {worst:.3g} of the largest weight")
sys.exit(0 if worst < 1e-3 else 1)
EOF
else
    echo "test_nccl: 2 ranks not run: $ngpu GPU(s)$(command -v mpirun > /dev/null || echo ', no mpirun')"
fi
finish
