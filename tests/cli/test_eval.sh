#!/usr/bin/env bash
# ddm eval: Fréchet distance / KID / precision-recall on domain-classifier features, from .npy, a PNG
# directory or a checkpoint, always beside the real-test baseline; bad inputs give one line.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
expect_ok "tiny classifier" $DDM classifier train --epochs 1 --n-train 1000 --n-test 200 --arch 8,M,16 --out $TMP/c.safetensors
expect_ok "tiny model" $DDM train $TINY --batch 4 --steps 2 --out $TMP/run
expect_ok "samples" $DDM sample --ckpt $TMP/run/ckpt.safetensors --n 40 --steps 2 --out $TMP/s.png --npy $TMP/s.npy
out=$($DDM eval --classifier $TMP/c.safetensors --samples $TMP/s.npy --n 40 --kid-subsets 5 --kid-size 20 --json $TMP/e.json 2>&1); rc=$?
check "eval from .npy runs" test $rc -eq 0
check "prints the samples and the real-test baseline" grep -q "real test (baseline)" <<<"$out"
check "JSON written" $PY -c "import json; d = json.load(open('$TMP/e.json')); assert d['n'] == 40 and d['samples']['fd'] >= 0 and d['real_test']['fd'] >= 0"
# real test images as samples score like the real baseline; noise scores far worse
$PY - "$TMP" <<'PYEOF'
import gzip, sys, numpy as np
t = sys.argv[1]
raw = gzip.open('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz').read()
x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[5000:5300].astype(np.float32) / 127.5 - 1
np.save(t + '/real.npy', x)
np.save(t + '/noise.npy', np.random.default_rng(0).uniform(-1, 1, x.shape).astype(np.float32))
np.save(t + '/bad.npy', x[:, :, :27, :])
import os; os.makedirs(t + '/pngs')
from zlib import compress
import struct
def png(path, img):   # 8-bit grey PNG written by hand (no PIL here)
    h, w = img.shape
    rows = b''.join(b'\x00' + bytes(r) for r in img)
    def chunk(k, d): return struct.pack('>I', len(d)) + k + d + struct.pack('>I', __import__('zlib').crc32(k + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IDAT', compress(rows)) + chunk(b'IEND', b''))
for i in range(300):
    png(f'{t}/pngs/{i:04d}.png', ((x[i, 0] + 1) * 127.5).round().clip(0, 255).astype(np.uint8))
PYEOF
json_fd() { $PY -c "import json; print(json.load(open('$1'))['samples']['fd'])"; }
expect_ok "eval real" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/real.npy --n 300 --kid-subsets 5 --kid-size 100 --json $TMP/real.json
expect_ok "eval png dir" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/pngs --n 300 --kid-subsets 5 --kid-size 100 --json $TMP/png.json
expect_ok "eval noise" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/noise.npy --n 300 --kid-subsets 5 --kid-size 100 --json $TMP/noise.json
check "PNG directory reads like the array it came from" $PY -c "import sys; a, b = $(json_fd $TMP/real.json), $(json_fd $TMP/png.json); sys.exit(0 if abs(a - b) <= 0.02 * a + 1e-6 else 1)"
check "noise is much farther than real images" $PY -c "import sys; sys.exit(0 if $(json_fd $TMP/noise.json) > 5 * $(json_fd $TMP/real.json) else 1)"
expect_ok "eval from a checkpoint" $DDM eval --classifier $TMP/c.safetensors --ckpt $TMP/run/ckpt.safetensors --n 20 --steps 2 --kid-subsets 2 --kid-size 10
out=$($DDM eval --classifier $TMP/c.safetensors --samples $TMP/s.npy --n 10 --kid-subsets 2 --kid-size 5 2>&1)
check "fewer samples than feature dimensions: a clear warning" grep -q "singular" <<<"$out"
expect_fail "image size mismatch" "images of 1x27x28 (CxHxW), but the reference data" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/bad.npy
# PNGs cut short or with a flipped bit (whose pixels stb_image would decode without a word)
cp $TMP/pngs/0001.png $TMP/0001.png
head -c 200 $TMP/0001.png > $TMP/pngs/0001.png
expect_fail "truncated PNG" "0001.png: not a readable PNG: truncated" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/pngs
$PY -c "import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[60] ^= 1; open(sys.argv[2], 'wb').write(b)" $TMP/0001.png $TMP/pngs/0001.png
expect_fail "bit-flipped PNG" "0001.png: not a readable PNG: CRC-32 mismatch in chunk 'IDAT'" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/pngs
printf 'not a png' > $TMP/pngs/0000.png
expect_fail "corrupt PNG" "0000.png: not a readable PNG" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/pngs
head -c 100 $TMP/real.npy > $TMP/trunc.npy
expect_fail "truncated npy" "trunc.npy" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/trunc.npy
expect_fail "both sources" "exactly one of --samples and --ckpt" $DDM eval --classifier $TMP/c.safetensors --samples $TMP/s.npy --ckpt $TMP/run/ckpt.safetensors
expect_fail "not a classifier" "classifier" $DDM eval --classifier $TMP/run/ckpt.safetensors --samples $TMP/s.npy
check "eval --help" $DDM eval --help > /dev/null
check "eval --help names both feature spaces" sh -c "$DDM eval --help | grep -q 'inception: Inception-v3 2048-d pool features (FID)'"
# --features inception: flag errors need no weights
expect_fail "unknown feature space" "--features 'vgg': expected cnn or inception" $DDM eval --features vgg --samples $TMP/s.npy
expect_fail "inception without weights" "--features inception needs --inception FILE" $DDM eval --features inception --samples $TMP/s.npy
expect_fail "unknown flavour" "--inception-flavour 'tf': expected fid or torchvision" $DDM eval --features inception --inception x --inception-flavour tf --samples $TMP/s.npy
expect_fail "inception weights with the cnn features" "need --features inception" $DDM eval --classifier $TMP/c.safetensors --inception x --samples $TMP/s.npy
expect_fail "classifier with the inception features" "--classifier is for --features cnn" $DDM eval --features inception --inception x --classifier $TMP/c.safetensors --samples $TMP/s.npy
expect_fail "missing inception file" "nope.safetensors" $DDM eval --features inception --inception $TMP/nope.safetensors --samples $TMP/s.npy
# the random Inception-v3 weights `make tests` wrote (tools/inception_convert.py --random)
INC=build/ref/inception
if [ -f $INC/SKIP ] || [ ! -f $INC/inception_fid.safetensors ]; then
    echo "test_eval.sh: Inception-v3 checks SKIPPED: $(cat $INC/SKIP 2>/dev/null || echo "no $INC/inception_fid.safetensors (run make tests)")"
else
    $PY - "$INC/inception_fid.safetensors" "$TMP" <<'PYEOF'
import sys
sys.path.insert(0, 'tools')
import st
t, meta = st.load(sys.argv[1])
missing = dict(t); del missing['Mixed_6c.branch7x7_2.conv.weight']
st.save(sys.argv[2] + '/inc_missing.safetensors', missing, meta)
bad = dict(t); bad['Mixed_7b.branch3x3_2b.bn.running_var'] = t['Mixed_7b.branch3x3_2b.bn.running_var'][:383]
st.save(sys.argv[2] + '/inc_shape.safetensors', bad, meta)
PYEOF
    expect_fail "inception weights: a missing tensor" "tensor 'Mixed_6c.branch7x7_2.conv.weight' is missing" $DDM eval --features inception --inception $TMP/inc_missing.safetensors --samples $TMP/s.npy
    expect_fail "inception weights: a misshapen tensor" "tensor 'Mixed_7b.branch3x3_2b.bn.running_var' has shape [383], expected [384]" $DDM eval --features inception --inception $TMP/inc_shape.safetensors --samples $TMP/s.npy
    expect_fail "inception: image size mismatch" "images of 1x27x28 (CxHxW), but the reference data" $DDM eval --features inception --inception $INC/inception_fid.safetensors --samples $TMP/bad.npy
    # end to end on 2 images per set (the features are heavy; the 2048-d Frechet distances dominate)
    out=$($DDM eval --features inception --inception $INC/inception_fid.safetensors --samples $TMP/s.npy --n 2 --kid-subsets 2 --kid-size 2 --k 1 --json $TMP/inc.json 2>&1); rc=$?
    check "eval --features inception runs" test $rc -eq 0
    check "reports FID on Inception-v3 pool features, fid flavour" grep -q "FID (Inception-v3, 2048-d pool features), fid flavour" <<<"$out"
    check "the table's column is FID" grep -qE "^set +FID +KID" <<<"$out"
    check "JSON names the metric and the extractor" $PY -c "import json; d = json.load(open('$TMP/inc.json')); assert d['metric'] == 'FID' and d['extractor'] == 'inception-fid' and d['feature_dim'] == 2048 and d['n'] == 2 and d['samples']['fd'] > 0"
fi
finish
