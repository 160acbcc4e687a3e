#!/usr/bin/env bash
# ddm train --eval-every: FD-CNN of the EMA model logged during training, equal to what `ddm eval`
# measures on the final checkpoint, and without any effect on the training itself.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
expect_ok "tiny classifier" $DDM classifier train --epochs 1 --n-train 1000 --n-test 200 --arch 8,M,16 --out $TMP/c.safetensors
RUN="$DDM train $TINY --batch 4 --steps 4 --seed 3 --disp infonce_l2"
EVAL="--eval-every 2 --eval-n 40 --eval-steps 2 --eval-classifier $TMP/c.safetensors"
expect_ok "train without evaluation" $RUN --out $TMP/plain
expect_ok "train with evaluation" $RUN $EVAL --out $TMP/eval
check "evaluation leaves the training bit-identical" cmp -s $TMP/plain/ckpt.safetensors $TMP/eval/ckpt.safetensors
check "two fd lines (steps 2 and 4)" test "$(grep -c '"fd"' $TMP/eval/log.jsonl)" -eq 2
expect_ok "ddm eval on the final checkpoint" $DDM eval --classifier $TMP/c.safetensors --ckpt $TMP/eval/ckpt.safetensors \
    --n 40 --steps 2 --seed 3 --kid-subsets 2 --kid-size 20 --json $TMP/e.json
check "the logged fd at step 4 equals ddm eval's" $PY - "$TMP" <<'PYEOF'
import json, sys
t = sys.argv[1]
logged = [json.loads(l) for l in open(t + '/eval/log.jsonl') if '"fd"' in l][-1]
ev = json.load(open(t + '/e.json'))['samples']['fd']
assert logged['step'] == 4 and abs(logged['fd'] - ev) <= 1e-4 * max(1, abs(ev)), (logged, ev)
PYEOF
expect_ok "plot fd against step" $DDM plot --log $TMP/eval/log.jsonl --y fd --out $TMP/fd.png
check "fd plot written" test -s $TMP/fd.png
expect_fail "no classifier" "--eval-every needs --eval-classifier" $RUN --eval-every 2 --out $TMP/x
expect_ok "a PCA tokenizer" $DDM pca --patch 7 --dim 4 --out $TMP/p.safetensors
expect_fail "l-DAE has no sampler" "has no sampler" $DDM train $TINY --objective ldae --pca $TMP/p.safetensors --eval-every 1 \
    --eval-classifier $TMP/c.safetensors --out $TMP/y
expect_fail "more samples than images" "--eval-n" $RUN $EVAL --eval-n 100000 --out $TMP/z
finish
