#!/usr/bin/env bash
# Hostile inputs by class (issue 18), each a case that once crashed, hung or was accepted silently: a checkpoint
# with very many tensors (the lookup must not be quadratic), config files with long lines, NUL bytes or a directory
# in place of the file, PNGs whose header declares more pixels than their data can hold, and the temp files of a
# killed checkpoint write (removed at the next start of a run in that directory). NaN and empty image sets for
# eval are in test_eval_input.sh.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

# 300000 zero-sized tensors (a 17 MB header): names are sorted once, looked up by binary search. With a linear
# lookup per entry (the old duplicate check) this took minutes.
$PY - "$TMP" <<'PYEOF'
import json, struct, sys, zlib
t = sys.argv[1]
h = {"t%06d" % i: {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(300000)}
j = json.dumps(h).encode()
open(t + "/many.safetensors", "wb").write(struct.pack("<Q", len(j)) + j)
h["__metadata__"] = {}
j = json.dumps(h).encode()[:-1] + b', "t000007": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}'
open(t + "/dup.safetensors", "wb").write(struct.pack("<Q", len(j)) + j)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
def png(w, h, idat):
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", idat) + chunk(b"IEND", b"")
import os
os.makedirs(t + "/if/a", exist_ok=True)
open(t + "/if/a/x.png", "wb").write(png(16000, 16000, zlib.compress(b"\0" * 1000)))
PYEOF
expect_fail "300000 tensors: fast, then no config" "not a ddm model checkpoint" timeout 30 $DDM sample --ckpt $TMP/many.safetensors --out $TMP/s.png
expect_fail "a tensor named twice" "tensor 't000007' appears twice" timeout 30 $DDM sample --ckpt $TMP/dup.safetensors --out $TMP/s.png

# config files: a directory, a NUL byte, and lines longer than any fixed buffer (the tail of a long comment is
# not a setting, a long value is read whole)
mkdir -p $TMP/confdir
expect_fail "--config a directory" "is a directory" $DDM train --config $TMP/confdir --steps 1 --out $TMP/r0
printf 'steps = 1\n\0\n' > $TMP/nul.conf
expect_fail "--config with a NUL byte" "nul.conf:2: a NUL byte" $DDM train --config $TMP/nul.conf --out $TMP/r0
{ printf '# '; head -c 3000 /dev/zero | tr '\0' 'x'; printf ' lr = -1\n'; } > $TMP/long.conf
expect_fail "long comment: its tail is no setting" "--batch 'many': expected a number" $DDM train --config $TMP/long.conf --batch many
{ printf 'out = %s/' "$TMP"; head -c 3000 /dev/zero | tr '\0' 'y'; printf '\n'; } > $TMP/longval.conf
expect_fail "long value read whole" "value longer than 511 characters" $DDM train --config $TMP/longval.conf

# a PNG header declaring 16000 x 16000 pixels over 1 KB of data: refused before decoding (eval's PNG reader: in
# test_eval_input.sh)
expect_fail "PNG bomb (ImageFolder)" "cannot hold them" $DDM data --data $TMP/if --data-format imagefolder --check

# 16-bit PNGs are accepted, reduced to 8 bits by keeping the high byte (docs/data.md): the same samples as the 8-bit
# PNGs of those high bytes
$PY - "$TMP" <<'PYEOF'
import os, sys, numpy as np
from PIL import Image
t = sys.argv[1]
v = np.random.default_rng(1).integers(0, 65535, size=(5, 6), dtype=np.uint16)
for d, im in (("p16/a", Image.fromarray(v, "I;16")), ("p8/a", Image.fromarray((v >> 8).astype(np.uint8)))):
    os.makedirs(t + "/" + d, exist_ok=True)
    im.save(t + "/" + d + "/x.png")
PYEOF
expect_ok "16-bit PNG folder" $DDM data --data $TMP/p16 --data-format imagefolder --npy $TMP/p16.npy --n 1
expect_ok "8-bit PNG folder" $DDM data --data $TMP/p8 --data-format imagefolder --npy $TMP/p8.npy --n 1
check "16-bit PNG = its high bytes" cmp -s $TMP/p16.npy $TMP/p8.npy

# labels outside the class range: the class count sizes the label embedding, so a stray label is an error naming
# it, not that many classes; --data-classes K declares a subset (empty classes allowed, labels >= K refused)
$PY - "$TMP" <<'PYEOF'
import os, struct, sys, numpy as np
t = sys.argv[1]
os.makedirs(t + "/idxl", exist_ok=True)
n = 12
open(t + "/idxl/train-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 8, 8) + np.random.default_rng(0).integers(0, 255, n * 64, dtype=np.uint8).tobytes())
lab = np.arange(n, dtype=np.uint8) % 3
lab[5] = 200
open(t + "/idxl/train-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + lab.tobytes())
x = np.random.default_rng(1).standard_normal((8, 4, 4, 4)).astype(np.float32)
np.save(t + "/lat.npy", x)
y = np.array([0, 1, 2, 3] * 2, dtype=np.float32); y[3] = 16000000
np.save(t + "/lat_labels.npy", y)
os.makedirs(t + "/idxt", exist_ok=True)
img = np.random.default_rng(2).integers(0, 255, n * 64, dtype=np.uint8).tobytes()
for name, lab in (("train", np.arange(n) % 3), ("t10k", np.array([0, 2] * 5 + [5, 0]))):
    open(t + "/idxt/%s-images-idx3-ubyte" % name, "wb").write(struct.pack(">IIII", 0x803, n, 8, 8) + img)
    open(t + "/idxt/%s-labels-idx1-ubyte" % name, "wb").write(struct.pack(">II", 0x801, n) + lab.astype(np.uint8).tobytes())
np.save(t + "/sub.npy", x)
np.save(t + "/sub_labels.npy", np.array([0, 2, 5, 2] * 2, dtype=np.float32))
PYEOF
expect_fail "IDX label 200 among 0..2" "labels run up to 200 (sample 5), but 197 of the classes 0..200 have no sample" $DDM data --data $TMP/idxl
expect_fail "latents label 16000000" "labels run up to 16000000 (sample 3)" $DDM data --data $TMP/lat.npy
expect_fail "a label outside --data-classes" "sample 3 of the all split has label 16000000, outside the 10 classes" $DDM data --data $TMP/lat.npy --data-classes 10
expect_fail "a subset without --data-classes" "3 of the classes 0..5 have no sample (the first: 1)" $DDM data --data $TMP/sub.npy
check "a subset with --data-classes: its classes" bash -c "$DDM data --data $TMP/sub.npy --data-classes 8 | grep -q '8 classes'"
expect_fail "--data-classes against CIFAR-like fixed classes" "holds imagefolder data with 1 classes" $DDM data --data $TMP/p8 --data-format imagefolder --data-classes 3
expect_ok "a test split may miss classes" $DDM data --data $TMP/idxt --split test
expect_fail "a test label outside the training classes (classifier)" "sample 10 of the test split has label 5, but the training split" $DDM classifier train --data $TMP/idxt --epochs 1 --out $TMP/c.safetensors
expect_fail "a test label outside the training classes (probe)" "has label 5, but the training split" $DDM probe --data $TMP/idxt --baseline pixels
expect_ok "train on the subset" $DDM train $TINY --patch 2 --data $TMP/sub.npy --data-classes 8 --batch 2 --steps 2 --ckpt-every 2 --out $TMP/sub
check "resume keeps the declared classes" bash -c "$DDM train --resume $TMP/sub/ckpt.safetensors --steps 3 --out $TMP/sub 2>&1 | grep -q '8 classes'"
check "the run's config says so" grep -q "data-classes = 8" $TMP/sub/config.conf

# a checkpoint's step is metadata too: a crafted one is refused, not clamped (it once ended the run at once as
# "done"), and a resume past its --steps is an error, not a silent no-op
expect_ok "a 2-step run" $DDM train $TINY --batch 2 --steps 2 --out $TMP/st
$PY - "$TMP" <<'PYEOF'
import sys
sys.path.insert(0, "tools")
import st
t = sys.argv[1]
tensors, meta = st.load(t + "/st/ckpt.safetensors")
for name, step in (("big", "99999999999999999999"), ("neg", "-5"), ("frac", "2.5")):
    st.save("%s/st_%s.safetensors" % (t, name), tensors, dict(meta, step=step))
PYEOF
for k in big neg frac; do
    expect_fail "crafted step ($k)" "metadata step" $DDM train --resume $TMP/st_$k.safetensors --steps 3 --out $TMP/st_$k
done
expect_fail "resume past --steps" "is at step 2, past --steps 1" $DDM train --resume $TMP/st/ckpt.safetensors --steps 1 --out $TMP/st

# a classifier's metadata (classes, channel counts) sizes its weights: checked against the tensors the file holds
# before anything of that size is allocated (a crafted 4096-channel architecture once initialised 1.2G weights)
expect_ok "a small classifier" $DDM classifier train --epochs 1 --n-train 256 --n-test 128 --batch 64 --out $TMP/cls.safetensors
$PY - "$TMP" <<'PYEOF'
import sys
sys.path.insert(0, "tools")
import st
t = sys.argv[1]
tensors, meta = st.load(t + "/cls.safetensors")
for name, kv in (("wide", {"architecture": ",".join(["4096"] * 8)}), ("classes", {"classes": "1048576"})):
    st.save("%s/cls_%s.safetensors" % (t, name), tensors, dict(meta, **kv))
PYEOF
# (the memory cap only outside AddressSanitizer, which reserves terabytes of address space for its shadow)
cap="ulimit -v 4000000;"; [ -n "${ASAN_OPTIONS:-}" ] && cap=""
expect_fail "classifier: crafted architecture" "expected [4096, 1, 3, 3]" bash -c "$cap timeout 20 $DDM classifier eval --ckpt $TMP/cls_wide.safetensors --n-test 10"
expect_fail "classifier: crafted class count" "expected [1048576, 128]" bash -c "$cap timeout 20 $DDM classifier eval --ckpt $TMP/cls_classes.safetensors --n-test 10"

# temp files of killed checkpoint writes: a dead writer's removed at the next run's start, a live one's kept
sleep 0 & dead=$!; wait $dead
mkdir -p $TMP/run
echo partial > $TMP/run/ckpt.safetensors.tmp.$dead
echo partial > $TMP/run/ckpt.safetensors.tmp.$$
expect_ok "train in that directory" $DDM train $TINY --batch 2 --steps 1 --out $TMP/run
check_not "the dead writer's temp file is gone" test -e $TMP/run/ckpt.safetensors.tmp.$dead
check "the live process's temp file stays" test -e $TMP/run/ckpt.safetensors.tmp.$$
finish
