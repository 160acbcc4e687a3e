#!/usr/bin/env bash
# ddm tensorboard: a training run's log.jsonl as a TensorBoard event file, read back by the independent
# reader (tools/tfevents_read.py: python3-protobuf, its own CRC-32C): every number of every log line is a
# scalar at that line's step. (The C API itself is tests/test_tfevents.c.)
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
if ! $PY -c "import google.protobuf" 2>/dev/null; then
    echo "test_tensorboard.sh: SKIPPED: python3-protobuf is not installed (tools/setup.sh installs it)"; finish; exit; fi
expect_ok "tiny run" $DDM train $TINY --batch 4 --steps 4 --log-every 1 --out $TMP/run --threads 2 --tensorboard 0
check "--tensorboard 0 writes no events" test -z "$(ls $TMP/run | grep tfevents)"
expect_ok "convert its log" $DDM tensorboard --log $TMP/run/log.jsonl --prefix train/
ev=$(ls $TMP/run/events.out.tfevents.* 2>/dev/null | head -1)
check "event file beside log.jsonl" test -s "$ev"
expect_ok "independent reader (CRCs, protobuf)" $PY tools/tfevents_read.py "$ev" --json $TMP/ev.json --tensorboard
check "every logged number is a scalar at its step" $PY -c "
import json, math
ev = json.load(open('$TMP/ev.json'))
got = {(e['step'], v['tag']): v['simple_value'] for e in ev for v in e['values']}
want = {}
for line in open('$TMP/run/log.jsonl'):
    o = json.loads(line)
    for k, v in o.items():
        if k != 'step' and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            want[(o['step'], 'train/' + k)] = v
assert set(got) == set(want), (sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5])
bad = [k for k in want if abs(got[k] - want[k]) > 1e-6 * max(1, abs(want[k]))]
assert not bad and len(want) >= 4 * 5, (bad[:5], len(want))
assert ev[0]['file_version'] == 'brain.Event:2'"
# the training loop writes its own events: every log line's numbers, and the sample grid of each evaluation
expect_ok "a classifier for the evaluation" $DDM classifier train --arch 4,M --epochs 1 --n-train 300 --n-test 100 --out $TMP/cls.safetensors --threads 2
expect_ok "a run with an evaluation" $DDM train $TINY --batch 4 --steps 4 --log-every 1 --eval-every 4 --eval-n 16 --eval-steps 2 --eval-classifier $TMP/cls.safetensors --out $TMP/tb --threads 2
ev2=$(ls $TMP/tb/events.out.tfevents.* 2>/dev/null | head -1)
expect_ok "its events read back" $PY tools/tfevents_read.py "$ev2" --json $TMP/ev2.json
check "the run's events: its losses and FD-CNN as scalars, the sample grid as an image" $PY -c "
import json
ev = json.load(open('$TMP/ev2.json'))
vals = {(e['step'], v['tag']): v for e in ev for v in e['values']}
log = [json.loads(l) for l in open('$TMP/tb/log.jsonl')]
assert all(abs(vals[(o['step'], 'train/loss')]['simple_value'] - o['loss']) < 1e-6 for o in log if 'loss' in o)
assert (4, 'train/fd') in vals
img = vals[(4, 'samples')]['image']
assert img['height'] > 0 and img['width'] > 0 and img['colorspace'] == 1, img"
printf '{"step": 3, "x": 1}\n' > $TMP/a.jsonl
expect_fail "missing log" "cannot open '$TMP/none.jsonl'" $DDM tensorboard --log $TMP/none.jsonl
expect_fail "unwritable out" "cannot create the directory" $DDM tensorboard --log $TMP/a.jsonl --out /proc/ddm-no
finish
