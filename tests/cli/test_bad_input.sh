#!/usr/bin/env bash
# Every user error gives one clear line and a non-zero exit, and leaves nothing half-written.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

expect_fail "unknown command" "unknown command 'trian'" $DDM trian
expect_fail "unknown flag" "unknown flag --stpes" $DDM train --stpes 3
expect_fail "out of range" "--lr -1: out of range" $DDM train --lr -1
expect_fail "not a number" "expected a number" $DDM train --batch many
expect_fail "bad variant" "--model 'Q/3'" $DDM train --model Q/3
expect_fail "bad dispersive variant" "--disp 'infonce'" $DDM train $TINY --disp infonce --steps 1 --out $TMP/r0
expect_fail "bad block list" "--disp-blocks '7'" $DDM train $TINY --disp infonce_l2 --disp-blocks 7 --steps 1 --out $TMP/r0
expect_fail "patch does not divide" "not divisible by the patch size 8" $DDM train --patch 8 --steps 1 --out $TMP/r0
expect_fail "missing dataset" "dataset-fashion-mnist" $DDM train $TINY --data $TMP/nowhere --steps 1 --out $TMP/r0

# truncated dataset file
mkdir -p $TMP/fm
for f in train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    cp /usr/share/datasets/fashion-mnist/$f $TMP/fm/; done
head -c 100000 /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz > $TMP/fm/train-images-idx3-ubyte.gz
expect_fail "truncated dataset" "train-images-idx3-ubyte" $DDM train $TINY --data $TMP/fm --steps 1 --out $TMP/r0

# a good tiny run to have a checkpoint
expect_ok "tiny train" $DDM train $TINY --batch 4 --steps 2 --out $TMP/run --disp infonce_l2 --disp-blocks last
CK=$TMP/run/ckpt.safetensors
check "checkpoint written" test -s $CK
check "no temp files left" test -z "$(ls $TMP/run | grep tmp)"

# corrupt header: a header length larger than the file
printf '\xff\xff\xff\x00\x00\x00\x00\x00{}' > $TMP/corrupt.safetensors
expect_fail "corrupt checkpoint" "corrupt.safetensors" $DDM sample --ckpt $TMP/corrupt.safetensors --out $TMP/s.png
check "no PNG from a failed sample" test ! -e $TMP/s.png
# truncated checkpoint
head -c 5000 $CK > $TMP/trunc.safetensors
expect_fail "truncated checkpoint" "trunc.safetensors" $DDM sample --ckpt $TMP/trunc.safetensors --out $TMP/s.png
# shapes that do not match: same tensors, config claims a wider model
$PY - "$CK" "$TMP/wide.safetensors" <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
cfg = json.loads(hdr["__metadata__"]["config"])
cfg["model"]["hidden"] = 64
hdr["__metadata__"]["config"] = json.dumps(cfg)
h = json.dumps(hdr).encode()
h += b" " * ((8 - len(h) % 8) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
PYEOF
expect_fail "misshapen checkpoint" "has shape [1, 16, 32], expected [1, 16, 64]" $DDM sample --ckpt $TMP/wide.safetensors --out $TMP/s.png
expect_fail "missing checkpoint" "does not exist" $DDM sample --ckpt $TMP/none.safetensors
expect_fail "sampler does not fit" "does not fit" $DDM sample --ckpt $CK --sampler ddpm --out $TMP/s.png
expect_fail "resume a missing checkpoint" "does not exist" $DDM train --resume $TMP/none.safetensors --out $TMP/r1

# ddm forward: wrong input shape, block out of range
$PY -c "import numpy as np; np.save('$TMP/x.npy', np.zeros((2,1,27,28),np.float32)); np.save('$TMP/t.npy', np.zeros(2,np.float32)); np.save('$TMP/y.npy', np.zeros(2,np.int64))"
expect_fail "forward shape" "expected [2,1,28,28]" $DDM forward --ckpt $CK --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --out $TMP/o.npy
expect_fail "forward block" "--block 5" $DDM forward --ckpt $CK --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --out $TMP/o.npy --block 5 --block-out $TMP/z.npy
check "no output from a failed forward" test ! -e $TMP/o.npy

# Dispersive Loss with batch 1: a warning, a zero loss, no crash
out=$($DDM train $TINY --batch 1 --steps 2 --log-every 1 --disp infonce_l2 --out $TMP/b1 2>&1); rc=$?
check "batch 1 runs" test $rc -eq 0
check "batch 1 warns" grep -q "at least 2" <<<"$out"
check "batch 1 dispersive loss is 0" grep -q '"loss_disp":0,' $TMP/b1/log.jsonl

# A non-finite loss stops the run with a clear line and keeps the last good checkpoint:
# resume from a checkpoint whose final bias holds a NaN.
mkdir -p $TMP/nan
$PY - "$CK" "$TMP/nan/ckpt.safetensors" <<'PYEOF'
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
off = 8 + n + hdr["final_layer.linear.bias"]["data_offsets"][0]
raw[off:off + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(raw)
PYEOF
cp $TMP/nan/ckpt.safetensors $TMP/nan.before
expect_fail "non-finite loss" "non-finite loss" $DDM train --resume $TMP/nan/ckpt.safetensors --steps 10 --out $TMP/nan
check "last good checkpoint kept" cmp -s $TMP/nan/ckpt.safetensors $TMP/nan.before
check "no temp files left after the failure" test -z "$(ls $TMP/nan | grep tmp)"
finish
