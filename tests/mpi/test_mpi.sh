#!/usr/bin/env bash
# Data-parallel training over MPI (issue 16; Open MPI, both ranks on this machine):
# 2 ranks with global batch 2B match one process with batch 2B within float tolerance, without Dispersive Loss and
# with --disp-gather; the replicas stay bit-identical (checked at every checkpoint); a 2-rank run resumed on 2 ranks
# is bit-exact; it resumes on 1 rank; a killed rank ends the job within seconds, naming the rank.
# Usage: tests/mpi/test_mpi.sh [DDM] (an MPI build: make MPI=1)
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
DDM=${1:-build-mpi/ddm}
MPIRUN="mpirun --allow-run-as-root --oversubscribe -np 2"
ARGS="$TINY --batch 8 --log-every 1 --erank-every 0 --lr 1e-3 --seed 4 --threads 1"
# close A B TOL PREFIX: the tensors named PREFIX* of two checkpoints within TOL of each other, relative to their
# largest value (after one step, opt.m.* is 0.1 x the gradient: the gradients are compared)
close() {
    $PY - "$@" <<'PYEOF'
import sys; sys.path.insert(0, "tools"); import st, numpy as np
a, _ = st.load(sys.argv[1]); b, _ = st.load(sys.argv[2]); tol = float(sys.argv[3]); pre = sys.argv[4]
keys = [k for k in a if k.startswith(pre) and np.any(b[k] != 0)]
scale = max(float(np.max(np.abs(b[k]))) for k in keys)
worst = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in keys) / scale
print(f"  {pre}*: {len(keys)} tensors, worst difference {worst:.3g} of their largest value")
sys.exit(0 if keys and worst < tol else 1)
PYEOF
}
# losses A B TOL: the step losses of two logs within TOL (relative)
losses() {
    $PY - "$@" <<'PYEOF'
import json, sys
a, b = ({json.loads(l)["step"]: json.loads(l)["loss"] for l in open(p + "/log.jsonl") if '"loss"' in l} for p in sys.argv[1:3])
steps = sorted(set(a) & set(b))
worst = max(abs(a[s] - b[s]) / abs(b[s]) for s in steps)
print(f"  {len(steps)} step losses, worst relative difference {worst:.3g}")
sys.exit(0 if steps and worst < float(sys.argv[3]) else 1)
PYEOF
}

# one step from a common trained state (at initialisation adaLN-Zero leaves most gradients 0)
expect_ok "a common start" $DDM train $ARGS --steps 3 --out $TMP/start
expect_ok "a common start with Dispersive Loss" $DDM train $ARGS --steps 3 --disp infonce_l2 --disp-blocks all --out $TMP/start_d
for run in one1 two1; do mkdir -p $TMP/$run && cp $TMP/start/ckpt.safetensors $TMP/$run/; done
for run in one_d1 two_d1 two_l1; do mkdir -p $TMP/$run && cp $TMP/start_d/ckpt.safetensors $TMP/$run/; done
R="--steps 4 --threads 1 --erank-every 0"
expect_ok "one process, batch 8, 1 step" $DDM train --resume $TMP/one1/ckpt.safetensors $R --out $TMP/one1
expect_ok "two ranks, global batch 8, 1 step" $MPIRUN $DDM train --resume $TMP/two1/ckpt.safetensors $R --out $TMP/two1
check "the same gradients (AdamW's first moment)" close $TMP/one1/ckpt.safetensors $TMP/two1/ckpt.safetensors 1e-5 opt.m.
check "the same weights after the step" close $TMP/one1/ckpt.safetensors $TMP/two1/ckpt.safetensors 1e-5 blocks.
expect_ok "one process, batch 8" $DDM train $ARGS --steps 4 --out $TMP/one
expect_ok "two ranks, global batch 8" $MPIRUN $DDM train $ARGS --steps 4 --out $TMP/two
check "the same losses over 4 steps" losses $TMP/one $TMP/two 1e-4
out=$($MPIRUN $DDM train $ARGS --steps 4 --out $TMP/two_b 2>&1)
check "the log says how the batch is split" grep -q "global batch 8, 4 per rank" <<<"$out"
check "replicas bit-identical" grep -q "replicas' weights were bit-identical" <<<"$out"
check "one log, from rank 0" test "$(grep -c '"loss"' $TMP/two_b/log.jsonl)" -eq 4
check "the same run twice: bit-identical" cmp -s $TMP/two/ckpt.safetensors $TMP/two_b/ckpt.safetensors

D="--disp infonce_l2 --disp-blocks all --disp-lambda 0.5"
expect_ok "one process with Dispersive Loss, 1 step" $DDM train --resume $TMP/one_d1/ckpt.safetensors $R --out $TMP/one_d1
expect_ok "two ranks, --disp-gather, 1 step" $MPIRUN $DDM train --resume $TMP/two_d1/ckpt.safetensors $R --disp-gather --out $TMP/two_d1
check "--disp-gather: the same gradients as one process" close $TMP/one_d1/ckpt.safetensors $TMP/two_d1/ckpt.safetensors 1e-5 opt.m.
expect_ok "one process with Dispersive Loss" $DDM train $ARGS $D --steps 4 --out $TMP/one_d
expect_ok "two ranks, --disp-gather" $MPIRUN $DDM train $ARGS $D --disp-gather --steps 4 --out $TMP/two_d
check "--disp-gather: the same losses over 4 steps" losses $TMP/one_d $TMP/two_d 1e-4
expect_ok "two ranks, per-rank Dispersive Loss, 1 step" $MPIRUN $DDM train --resume $TMP/two_l1/ckpt.safetensors $R --out $TMP/two_l1
check_not "per-rank Dispersive Loss is another objective" close $TMP/one_d1/ckpt.safetensors $TMP/two_l1/ckpt.safetensors 1e-5 opt.m.

expect_ok "two ranks, first half" $MPIRUN $DDM train $ARGS --steps 2 --out $TMP/half
mkdir -p $TMP/one_more && cp $TMP/half/ckpt.safetensors $TMP/one_more/
expect_ok "two ranks, resumed" $MPIRUN $DDM train --resume $TMP/half/ckpt.safetensors --steps 4 --threads 1 --out $TMP/half
check "a resumed 2-rank run is bit-exact" cmp -s $TMP/half/ckpt.safetensors $TMP/two/ckpt.safetensors
expect_ok "resumed on 1 rank" $DDM train --resume $TMP/one_more/ckpt.safetensors --steps 4 --threads 1 --log-every 1 --out $TMP/one_more
check "1-rank resume of a 2-rank run: float-close losses" losses $TMP/one_more $TMP/two 1e-4

expect_fail "a batch that does not divide" "must divide evenly among the 2 ranks" $MPIRUN $DDM train $ARGS --batch 7 --steps 1 --out $TMP/odd
expect_fail "only train is data-parallel" "runs as one process" $MPIRUN $DDM sample --ckpt $TMP/two/ckpt.safetensors --out $TMP/s.png

# kill rank 1 in the middle of a long run: the job ends within seconds, naming the rank
$MPIRUN $DDM train $ARGS --steps 100000000 --log-every 1 --out $TMP/kill > $TMP/kill.txt 2>&1 &
job=$!
for i in $(seq 1 150); do grep -q '"loss"' $TMP/kill/log.jsonl 2>/dev/null && break; sleep 0.2; done
victim=""
for p in $(pgrep -f "ddm train.*$TMP/kill"); do
    tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -q '^OMPI_COMM_WORLD_RANK=1$' && victim=$p
done
check "found rank 1" test -n "$victim"
t0=$SECONDS
kill -9 $victim
wait $job; rc=$?
check "the job ends (status $rc) within 20 s" test $rc -ne 0 -a $((SECONDS - t0)) -le 20
check "the message names rank 1" grep -q "rank 1" $TMP/kill.txt
check "no rank left behind" test -z "$(pgrep -f "ddm train.*$TMP/kill")"
finish
