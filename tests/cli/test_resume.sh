#!/usr/bin/env bash
# A run stopped and resumed gives bit-identical losses and weights to an uninterrupted one
# (same thread count), with Dispersive Loss, flips, random resized crops, label dropout, warmup-cosine and
# clipping on.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
ARGS="$TINY --batch 6 --flip --crop-scale 0.3 --disp infonce_l2 --disp-blocks all --schedule cosine --warmup 2 --lr 1e-3 --clip 0.5 --ema 0.9 --seed 5 --log-every 1 --threads 2"
expect_ok "straight run" $DDM train $ARGS --steps 6 --out $TMP/a
expect_ok "first half" $DDM train $ARGS --steps 3 --out $TMP/b
expect_ok "resumed half" $DDM train --resume $TMP/b/ckpt.safetensors --steps 6 --out $TMP/b --log-every 1 --threads 2
check "resumed checkpoint is bit-identical" cmp -s $TMP/a/ckpt.safetensors $TMP/b/ckpt.safetensors
# timings differ, everything else must not (an effective-rank line at the end of a partial run is extra)
strip() { grep '"loss"' "$1" | sed 's/,"img_per_s".*//'; }
check "resumed log is identical" diff <(strip $TMP/a/log.jsonl) <(strip $TMP/b/log.jsonl)
check "log has 6 steps" test "$(grep -c '"loss"' $TMP/b/log.jsonl)" -eq 6
# --keep-every keeps milestone copies; the last equals the final checkpoint, an earlier one resumes to it
expect_ok "keep every 2 steps" $DDM train $ARGS --steps 6 --keep-every 2 --out $TMP/k
check "ckpt_2, ckpt_4, ckpt_6 kept" test -s $TMP/k/ckpt_2.safetensors -a -s $TMP/k/ckpt_4.safetensors -a -s $TMP/k/ckpt_6.safetensors
check_not "no ckpt_3" test -e $TMP/k/ckpt_3.safetensors
check "ckpt_6 = the final checkpoint" cmp -s $TMP/k/ckpt_6.safetensors $TMP/k/ckpt.safetensors
check "keeping copies does not change the run" cmp -s $TMP/k/ckpt.safetensors $TMP/a/ckpt.safetensors
expect_ok "resume from ckpt_4" $DDM train --resume $TMP/k/ckpt_4.safetensors --out $TMP/k4 --log-every 1 --threads 2
check "resumed from a kept copy: bit-identical at step 6" cmp -s $TMP/k4/ckpt.safetensors $TMP/a/ckpt.safetensors
# a different seed gives a different run (the comparison above can fail)
expect_ok "other seed" $DDM train ${ARGS/--seed 5/--seed 6} --steps 6 --out $TMP/c
check_not "another seed differs" cmp -s $TMP/a/ckpt.safetensors $TMP/c/ckpt.safetensors
# the crops are in the stored config (so a resume keeps them) and change the run
check "crop_scale recorded in the checkpoint" grep -aq 'crop_scale\\":0.3' $TMP/a/ckpt.safetensors
expect_ok "no crops" $DDM train ${ARGS/--crop-scale 0.3/} --steps 6 --out $TMP/nocrop
check_not "crops change the run" cmp -s $TMP/a/ckpt.safetensors $TMP/nocrop/ckpt.safetensors
# resuming after a crash that logged steps past the checkpoint keeps the log consistent
echo '{"step":99,"loss":1}' >> $TMP/b/log.jsonl
cp $TMP/b/ckpt.safetensors $TMP/b6.safetensors
expect_ok "resume again" $DDM train --resume $TMP/b6.safetensors --steps 7 --out $TMP/b --log-every 1 --threads 2
check_not "stale log lines dropped" grep -q '"step":99' $TMP/b/log.jsonl
check "log continues at step 7" test "$(grep '"loss"' $TMP/b/log.jsonl | tail -1 | cut -c1-10)" = '{"step":7,'
# without --steps a resumed run keeps its own total: a checkpoint whose config says 8 steps continues to 8
$PY - "$TMP/b6.safetensors" "$TMP/b8.safetensors" <<'PYEOF'
import sys
raw = open(sys.argv[1], "rb").read()
old, new = b'"steps\\":6,', b'"steps\\":8,'     # inside the escaped "config" string of the header
assert raw.count(old) == 1
open(sys.argv[2], "wb").write(raw.replace(old, new))   # same length: offsets hold
PYEOF
expect_ok "resume without --steps" $DDM train --resume $TMP/b8.safetensors --out $TMP/b8 --log-every 1 --threads 2
check "it ran to the checkpoint's total, step 8" test "$(tail -1 $TMP/b8/log.jsonl | cut -c1-10)" = '{"step":8,'
# Ctrl-C (SIGINT) saves a checkpoint at the current step and exits 130; the run resumes from it.
# The signal goes only once the run logs steps (its handler is installed by then: a SIGINT during start-up
# would be ignored, as background jobs of a script ignore it), and the run is far too long to end by itself.
$DDM train $TINY --batch 4 --steps 100000000 --ckpt-every 100000000 --out $TMP/int > /dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ -s $TMP/int/log.jsonl ] && break; sleep 0.1; done
kill -INT $pid
wait $pid; rc=$?
check "interrupted run exits 130 (got $rc)" test $rc -eq 130
check "interrupted run saved a checkpoint" test -s $TMP/int/ckpt.safetensors
step=$($PY -c "import json,struct,sys; f=open('$TMP/int/ckpt.safetensors','rb'); n=struct.unpack('<Q',f.read(8))[0]; print(json.loads(f.read(n))['__metadata__']['step'])")
check "interrupted at a step > 0 (got $step)" test "$step" -gt 0
expect_ok "resume the interrupted run" $DDM train --resume $TMP/int/ckpt.safetensors --steps $((step + 1)) --out $TMP/int
check "resumed run logged step $((step + 1))" grep -q "\"step\":$((step + 1))," $TMP/int/log.jsonl
finish
