#!/usr/bin/env bash
# The Dispersive mechanism monitor (src/train/monitor.h): its fields reach log.jsonl with and without the
# loss, their values are in range, and training is bit-identical with the monitor's extra forward passes on or off.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
ARGS="$TINY --batch 8 --steps 4 --log-every 2 --seed 3 --threads 2"
expect_ok "with the loss, erank every 2" $DDM train $ARGS --disp infonce_l2 --disp-blocks 0 --erank-every 2 --erank-n 16 --out $TMP/on
expect_ok "with the loss, no erank" $DDM train $ARGS --disp infonce_l2 --disp-blocks 0 --erank-every 0 --out $TMP/off
check "the monitor leaves training bit-identical" cmp -s $TMP/on/ckpt.safetensors $TMP/off/ckpt.safetensors
expect_ok "without the loss, two monitored blocks" $DDM train $ARGS --disp none --monitor-blocks 0,1 --erank-every 4 --erank-n 16 --out $TMP/none
if $PY - "$TMP" <<'PY'; then ok; else bad "monitor fields"; fi
import json, math, sys
d = sys.argv[1]
def lines(run): return [json.loads(l) for l in open(f"{d}/{run}/log.jsonl")]
on, none = lines("on"), lines("none")
steps = [l for l in on if "loss" in l]
assert len(steps) == 2 and all("feat_rms_b0" in l for l in steps), steps
for l in steps:
    assert l["feat_rms_b0"] > 0 and 0 <= l["pair_share_b0"] <= 1
    assert l["disp_grad_b0"] >= 0 and l["diff_grad_b0"] > 0
    assert math.isclose(l["grad_ratio_b0"], l["disp_grad_b0"] / l["diff_grad_b0"], rel_tol=1e-4)
assert [l["step"] for l in on if "erank_b0" in l] == [2, 4]
assert all(1 <= l["erank_b0"] <= 16 for l in on if "erank_b0" in l)
for b in (0, 1):
    assert all(f"grad_ratio_b{b}" in l for l in none if "loss" in l)
    assert [l["step"] for l in none if f"erank_b{b}" in l] == [4]
assert not any("erank_b0" in l for l in lines("off"))
PY
expect_fail "too many monitored blocks" "--monitor-blocks" $DDM train $ARGS --depth 12 --monitor-blocks all --out $TMP/x
finish
