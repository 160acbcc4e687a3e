#!/usr/bin/env bash
# ddm classifier: a short training run on a subset writes a loadable classifier (progress line per
# epoch, deterministic given the seed); eval reports its test accuracy; bad files and flags are
# one-line errors.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

SMALL="--arch 8,M,16 --epochs 1 --batch 32 --n-train 1024 --n-test 500 --threads 1"
out=$($DDM classifier train $SMALL --out $TMP/c.safetensors 2>&1); rc=$?
check "ddm classifier train succeeds: $out" test $rc -eq 0
check "classifier written" test -s $TMP/c.safetensors
check "no temp files left" test -z "$(ls $TMP | grep tmp)"
check "progress line: $out" grep -qE '^epoch 1/1: train loss [0-9.]+, train accuracy [0-9.]+%, test accuracy [0-9.]+% \(' <<< "$out"
acc=$(echo "$out" | sed -nE 's/^test accuracy ([0-9.]+)%.*/\1/p')
check "better than chance after one short epoch (test accuracy $acc%)" awk -v a="$acc" 'BEGIN { exit !(a > 15) }'
$PY - "$TMP/c.safetensors" > $TMP/meta.txt <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
m = h["__metadata__"]
print(m["format"], m["architecture"], m["channels"], m["height"], m["width"], m["classes"], m["feature_dim"],
      h["conv0.weight"]["shape"], h["fc.weight"]["shape"], "test_accuracy" in m)
PYEOF
check "metadata: $(cat $TMP/meta.txt)" grep -qF "ddm-classifier-1 8,M,16 1 28 28 10 16 [8, 1, 3, 3] [10, 16] True" $TMP/meta.txt
expect_ok "same seed again" $DDM classifier train $SMALL --out $TMP/c2.safetensors
check "deterministic given the seed" cmp -s $TMP/c.safetensors $TMP/c2.safetensors

ev=$($DDM classifier eval --ckpt $TMP/c.safetensors --n-test 500 --threads 1 2>&1); rc=$?
check "eval succeeds: $ev" test $rc -eq 0
check "eval reports the training run's accuracy ($acc%): $ev" grep -qF "test accuracy $acc% (500 images" <<< "$ev"

# a misshapen tensor, a file of another kind, a missing tensor, no file
$PY - "$TMP/c.safetensors" "$TMP" <<'PYEOF'
import sys
sys.path.insert(0, "tools")
import numpy as np, st
t, m = st.load(sys.argv[1])
bad = dict(t); bad["conv1.weight"] = np.zeros((16, 8, 5, 5), np.float32)
st.save(sys.argv[2] + "/shape.safetensors", bad, m)
other = dict(m); other["format"] = "ddm-pca-1"
st.save(sys.argv[2] + "/other.safetensors", t, other)
missing = dict(t); del missing["bn0.running_var"]
st.save(sys.argv[2] + "/missing.safetensors", missing, m)
PYEOF
expect_fail "misshapen tensor" "conv1.weight" $DDM classifier eval --ckpt $TMP/shape.safetensors
expect_fail "another kind of file" "not a ddm classifier" $DDM classifier eval --ckpt $TMP/other.safetensors
expect_fail "missing tensor" "bn0.running_var" $DDM classifier eval --ckpt $TMP/missing.safetensors
expect_fail "no such file" "nowhere.safetensors" $DDM classifier eval --ckpt $TMP/nowhere.safetensors
expect_fail "eval without --ckpt" "needs --ckpt" $DDM classifier eval
expect_fail "bad architecture" "architecture '8,X'" $DDM classifier train --arch 8,X --out $TMP/bad.safetensors
expect_fail "too many pools" "max-pool on a 1x1 map" $DDM classifier train --arch 8,M,M,M,M,M --out $TMP/bad.safetensors
check "no file from a failed run" test ! -e $TMP/bad.safetensors
expect_fail "unknown subcommand" "unknown classifier subcommand 'fit'" $DDM classifier fit
expect_fail "bad --epochs" "--epochs 0: out of range" $DDM classifier train --epochs 0

help=$($DDM classifier train --help); rc=$?
check "train --help exits 0" test $rc -eq 0
check "train --help lists the flags" grep -q -- "--n-train" <<< "$help"
check "train --help: default --epochs 20" grep -qE -- "^  --epochs .*\[20\]$" <<< "$help"
check "train --help: default --lr 0.08" grep -qE -- "^  --lr .*\[0.08\]$" <<< "$help"
check "eval --help lists --ckpt" grep -q -- "--ckpt" <<< "$($DDM classifier eval --help)"
check "classifier --help lists train and eval" grep -q "eval" <<< "$($DDM classifier --help)"
check "ddm --help lists classifier" grep -q "classifier" <<< "$($DDM --help)"
finish
