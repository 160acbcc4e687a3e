#!/usr/bin/env bash
# Faults during training: a log that cannot be written (a full disk) stops the run with one line and the last
# checkpoint intact; SIGTERM while setting up says so and exits 130; --keep-last keeps the newest checkpoints and
# never a milestone's or the current one's place; --nonfinite skip skips updates up to its limit, naming the step
# and the tensor.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
ARGS="$TINY --batch 4 --threads 2 --erank-every 0"

# log.jsonl on a full disk (a link to /dev/full): the step-1 checkpoint is kept, the run stops at the first log line
mkdir -p $TMP/full && ln -s /dev/full $TMP/full/log.jsonl
expect_fail "a log on a full disk" "cannot write the log" $DDM train $ARGS --steps 4 --log-every 2 --ckpt-every 1 --out $TMP/full
check "the last checkpoint is there" test -f $TMP/full/ckpt.safetensors
check "no temp files left" test -z "$(ls $TMP/full | grep tmp)"

# SIGTERM while the data are being read (a FIFO nobody writes: the reader waits forever)
mkdir -p $TMP/fifo && mkfifo $TMP/fifo/train-images-idx3-ubyte $TMP/fifo/train-labels-idx1-ubyte
$DDM train $ARGS --steps 2 --data $TMP/fifo --out $TMP/sig > $TMP/sig.txt 2>&1 &
pid=$!
sleep 1
kill -TERM $pid
wait $pid; rc=$?
check "SIGTERM during set-up exits 130" test $rc -eq 130
check "and says so" grep -q "ddm train: interrupted" $TMP/sig.txt

# --keep-last 2 with a milestone every 2 steps: 2 and 4 are milestones, 4 and 5 the last two
expect_ok "keep the last two" $DDM train $ARGS --steps 5 --ckpt-every 1 --keep-every 2 --keep-last 2 --out $TMP/keep
check "kept: ckpt_2 ckpt_4 ckpt_5 (and ckpt)" test "$(cd $TMP/keep && ls ckpt*.safetensors | tr '\n' ' ')" = "ckpt.safetensors ckpt_2.safetensors ckpt_4.safetensors ckpt_5.safetensors "
check "the last kept equals the current" cmp -s $TMP/keep/ckpt.safetensors $TMP/keep/ckpt_5.safetensors

# A NaN in a weight: every step's loss is NaN; skip three times, then stop
expect_ok "a run to break" $DDM train $ARGS --steps 2 --out $TMP/ok
mkdir -p $TMP/nan
$PY - "$TMP/ok/ckpt.safetensors" "$TMP/nan/ckpt.safetensors" <<'PYEOF'
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
off = 8 + n + json.loads(raw[8:8 + n])["blocks.1.mlp.fc1.weight"]["data_offsets"][0]
raw[off:off + 4] = struct.pack("<f", float("inf"))
open(sys.argv[2], "wb").write(raw)
PYEOF
cp $TMP/nan/ckpt.safetensors $TMP/nan.before
expect_fail "stop by default, naming the step" "non-finite loss or gradient at step 3" $DDM train --resume $TMP/nan/ckpt.safetensors --steps 9 --out $TMP/nan
check "the checkpoint is untouched" cmp -s $TMP/nan/ckpt.safetensors $TMP/nan.before
expect_fail "skip up to the limit" "--nonfinite-limit reached" $DDM train --resume $TMP/nan/ckpt.safetensors --steps 9 --nonfinite skip --nonfinite-limit 3 --out $TMP/nan
check "three skipped steps logged" test "$(grep -c '"skipped"' $TMP/nan/log.jsonl)" -eq 3
check "the log stays JSON" $PY -c "import json,sys; [json.loads(l) for l in open('$TMP/nan/log.jsonl')]"
# SIGKILL at 8 points of a run that writes a checkpoint every step (0 to 90 ms after its first logged step: some
# kills land mid-write): after each, the
# checkpoint is whole (ddm sample loads it) and the next run resumes from it; the dead writers' temp files are gone
# once a run has started again in the directory.
mkdir -p $TMP/kill
survived=0
for k in 1 2 3 4 5 6 7 8; do
    from=""; [ -f $TMP/kill/ckpt.safetensors ] && from="--resume $TMP/kill/ckpt.safetensors"
    $DDM train $ARGS --steps 100000 --ckpt-every 1 --log-every 1 --out $TMP/kill $from > /dev/null 2>&1 &
    pid=$!
    # wait for this run's first logged step (set-up takes longer under a sanitizer), then kill a moment later
    before=$(cat $TMP/kill/log.jsonl 2>/dev/null | wc -l)
    for i in $(seq 600); do [ "$(cat $TMP/kill/log.jsonl 2>/dev/null | wc -l)" -gt "$before" ] && break; sleep 0.1; done
    sleep 0.0$((k * 13 % 10))
    kill -KILL $pid; wait $pid 2>/dev/null
    if [ ! -f $TMP/kill/ckpt.safetensors ] || $DDM sample --ckpt $TMP/kill/ckpt.safetensors --n 1 --steps 1 --threads 1 \
        --out $TMP/kill.png > /dev/null 2>&1; then survived=$((survived + 1)); fi
done
check "8 of 8 kill points leave a whole checkpoint (got $survived)" test $survived -eq 8
check "a checkpoint was written at all" test -f $TMP/kill/ckpt.safetensors
at=$($PY -c 'import sys; sys.path.insert(0, "tools"); import st; print(st.load(sys.argv[1])[1]["step"])' $TMP/kill/ckpt.safetensors)
expect_ok "resume after the last kill (at step $at)" $DDM train $ARGS --resume $TMP/kill/ckpt.safetensors --steps $((at + 1)) --out $TMP/kill
check "no temp files left by the killed runs" test -z "$(ls $TMP/kill | grep '\.tmp\.')"
finish
