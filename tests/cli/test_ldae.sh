#!/usr/bin/env bash
# l-DAE (ddm train --objective ldae --pca): trains with a tokenizer whose patch differs from the model's,
# logs finite losses, embeds the tokenizer in the checkpoint, resumes bit-identically without the
# tokenizer file, probes (default t = 10, --block encoder); user errors are one line.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

expect_ok "fit a PCA tokenizer" $DDM pca --patch 4 --dim 8 --patches 5000 --threads 1 --out $TMP/pca.safetensors
cp $TMP/pca.safetensors $TMP/pca_gone.safetensors
ARGS="--objective ldae --pca $TMP/pca_gone.safetensors $TINY --batch 4 --lr 1e-3 --seed 3 --log-every 1 --threads 2"
out=$($DDM train $ARGS --steps 4 --out $TMP/a 2>&1); rc=$?
check "ldae train runs: $out" test $rc -eq 0
check "reports the tokenizer" grep -q "l-DAE: PCA tokenizer patch 4, D = 16, d = 8 (not whitened); encoder = blocks 0..0" <<< "$out"
check "unconditional" grep -q "ddm train: unconditional" <<< "$out"
check "log has 4 steps" test "$(grep -c '"loss"' $TMP/a/log.jsonl)" -eq 4
loss=$(sed -nE 's/.*"loss":([^,]+),.*/\1/p' $TMP/a/log.jsonl | head -1)
check "finite positive loss (got $loss)" awk -v x="$loss" 'BEGIN { exit !(x + 0 > 0 && x + 0 < 100) }'
$PY - "$TMP/a/ckpt.safetensors" > $TMP/meta.txt <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
m = h["__metadata__"]
t = json.loads(m["config"])["train"]
mo = json.loads(m["config"])["model"]
print(t["objective"], t["pca"].endswith("pca_gone.safetensors"), t["encoder_depth"], mo["num_classes"],
      m["pca.patch"], m["pca.d"], h["pca.basis"]["shape"], h["pca.eigenvalues"]["dtype"])
PYEOF
check "config and embedded tokenizer: $(cat $TMP/meta.txt)" grep -qF "ldae True 1 0 4 8 [16, 16] F64" $TMP/meta.txt

# resume: bit-identical to the straight run, with the tokenizer file gone (the checkpoint embeds it)
expect_ok "first half" $DDM train $ARGS --steps 2 --out $TMP/b
rm $TMP/pca_gone.safetensors
expect_ok "resumed half (tokenizer file removed)" $DDM train --resume $TMP/b/ckpt.safetensors --steps 4 --out $TMP/b --log-every 1 --threads 2
check "resumed checkpoint is bit-identical" cmp -s $TMP/a/ckpt.safetensors $TMP/b/ckpt.safetensors
strip() { grep '"loss"' "$1" | sed 's/,"img_per_s".*//'; }   # the step lines, timings dropped
check "resumed log is identical" diff <(strip $TMP/a/log.jsonl) <(strip $TMP/b/log.jsonl)

# probe: default t = 10 of 1000; --block encoder = encoder-depth - 1
SMALL="--n-train 500 --n-test 200 --epochs 2 --threads 1"
out=$($DDM probe --ckpt $TMP/a/ckpt.safetensors $SMALL 2>&1); rc=$?
check "probe an l-DAE checkpoint: $out" test $rc -eq 0
check "ldae default t = 10" grep -q "ldae), block 1 of 0..1, t = 10$" <<< "$out"
check "linear probe printed" grep -qE "^linear probe top-1: [0-9.]+%" <<< "$out"
out=$($DDM probe --ckpt $TMP/a/ckpt.safetensors --block encoder --ema $SMALL 2>&1)
check "--block encoder = block 0: $out" grep -q "ldae), block 0 of 0..1, t = 10$" <<< "$out"
expect_fail "probe t out of range" "an l-DAE model takes a noise level t from 0 (clean) to 999" $DDM probe --ckpt $TMP/a/ckpt.safetensors --t 1000 $SMALL
expect_fail "no sampler" "was trained with the ldae objective" $DDM sample --ckpt $TMP/a/ckpt.safetensors --out $TMP/s.png
# --encoder-depth is recorded; a 4-block model: encoder-depth 3 -> probe block 2
expect_ok "encoder depth 3" $DDM train --objective ldae --pca $TMP/pca.safetensors --depth 4 --hidden 32 --heads 2 --patch 7 --encoder-depth 3 --batch 2 --steps 1 --threads 1 --out $TMP/e
out=$($DDM probe --ckpt $TMP/e/ckpt.safetensors --block encoder $SMALL 2>&1)
check "--block encoder follows --encoder-depth: $out" grep -q "block 2 of 0..3" <<< "$out"

# user errors
expect_fail "ldae without --pca" "--objective ldae needs --pca FILE" $DDM train --objective ldae $TINY --steps 1 --out $TMP/bad
expect_fail "--pca without ldae" "--pca is only used with --objective ldae" $DDM train --pca $TMP/pca.safetensors $TINY --steps 1 --out $TMP/bad
expect_fail "a checkpoint as the tokenizer" "not a ddm PCA tokenizer" $DDM train --objective ldae --pca $TMP/a/ckpt.safetensors $TINY --steps 1 --out $TMP/bad
expect_fail "missing tokenizer" "does not exist" $DDM train --objective ldae --pca $TMP/nothing.safetensors $TINY --steps 1 --out $TMP/bad
fake() {   # fake <path> <patch> <channels>: a well-formed tokenizer of another shape
    $PY - "$@" <<'PYEOF'
import sys
import numpy as np
sys.path.insert(0, "tools")
import st
p, c = int(sys.argv[2]), int(sys.argv[3])
D = p * p * c
st.save(sys.argv[1], {"pca.mean": np.zeros(D, np.float32), "pca.basis": np.eye(D, dtype=np.float32),
                      "pca.eigenvalues": np.linspace(1.0, 0.1, D)},
        {"format": "ddm-pca-1", "patch": str(p), "channels": str(c), "d": "2", "centered": "1", "whitened": "0"})
PYEOF
}
fake $TMP/rgb.safetensors 2 3
expect_fail "tokenizer with the wrong channels" "the PCA tokenizer was fitted on 3-channel images (patch 2 x 2 x 3), the images have 1 channel" $DDM train --objective ldae --pca $TMP/rgb.safetensors $TINY --steps 1 --out $TMP/bad
fake $TMP/p3.safetensors 3 1
expect_fail "tokenizer patch does not divide the images" "image size 28x28 is not divisible by the patch size 3" $DDM train --objective ldae --pca $TMP/p3.safetensors $TINY --steps 1 --out $TMP/bad
expect_fail "encoder deeper than the model" "--encoder-depth 3: expected 1 to the depth 2" $DDM train --objective ldae --pca $TMP/pca.safetensors $TINY --encoder-depth 3 --steps 1 --out $TMP/bad
check "no checkpoint from failed runs" test ! -e $TMP/bad/ckpt.safetensors
finish
