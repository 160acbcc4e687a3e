#!/usr/bin/env bash
# Training on every dataset format (issue 15): a few steps and a sample on CIFAR batches, an ImageFolder of PNG
# and JPEG files of mixed sizes (ADM's crop), latents in one .npy with their labels and a per-channel scale, and
# fast-DiT's per-sample .npy folders; the model takes its input size, channels and classes from the data, the
# checkpoint records the dataset, and `ddm probe --ckpt` finds the data from that record.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
if ! $PY -c "import PIL" 2>/dev/null; then echo "test_train_data.sh: SKIPPED: python3-pil is not installed"; finish; exit; fi
$PY - "$TMP" <<'PYEOF'
import os, sys, numpy as np
from PIL import Image
t = sys.argv[1]; r = np.random.default_rng(0)
os.makedirs(f"{t}/cifar")
for name, n in [(f"data_batch_{i}.bin", 8) for i in range(1, 6)] + [("test_batch.bin", 20)]:
    rec = np.concatenate([r.integers(0, 10, (n, 1)), r.integers(0, 256, (n, 3072))], 1).astype(np.uint8)
    rec.tofile(f"{t}/cifar/{name}")
for split, n in (("train", 6), ("val", 3)):
    for k, cls in enumerate(("cat", "dog", "owl")):
        os.makedirs(f"{t}/folder/{split}/{cls}")
        for i in range(n):
            a = r.integers(0, 256, (40 + 3 * i, 36 + 2 * k, 3)).astype(np.uint8)
            Image.fromarray(a).save(f"{t}/folder/{split}/{cls}/{i}." + ("png" if i % 2 else "jpg"))
z = r.standard_normal((30, 4, 8, 8)).astype(np.float32) / 0.18215
np.save(f"{t}/lat.npy", z); np.save(f"{t}/lat_labels.npy", r.integers(0, 5, 30).astype(np.int64))
os.makedirs(f"{t}/fd/imagenet256_features"); os.makedirs(f"{t}/fd/imagenet256_labels")
for i in range(12):
    np.save(f"{t}/fd/imagenet256_features/{i}.npy", r.standard_normal((1, 4, 8, 8)).astype(np.float32))
    np.save(f"{t}/fd/imagenet256_labels/{i}.npy", np.array([i % 3]))
PYEOF
T="--depth 2 --hidden 32 --heads 2 --batch 4 --steps 2 --log-every 1 --threads 2 --erank-every 0 --erank-n 4"
S="--n 4 --steps 2 --threads 2"
run() {   # name, what the header says, train flags...
    local name=$1 shape=$2; shift 2
    local out
    out=$($DDM train $T "$@" --out $TMP/$name 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -q "$shape" <<<"$out"; then ok; else bad "$name: train: $out"; fi
    expect_ok "$name: sample" $DDM sample --ckpt $TMP/$name/ckpt.safetensors $S --out $TMP/$name/s.png --npy $TMP/$name/s.npy
    check "$name: the checkpoint records the dataset" $PY -c "
import sys, json; sys.path.insert(0, 'tools'); import st
_, m = st.load('$TMP/$name/ckpt.safetensors'); d = json.loads(m['dataset']); assert d['format'], d"
}
run cifar "40 x 3x32x32, 10 classes" --data $TMP/cifar --patch 8
run folder "18 x 3x16x16, 3 classes" --data $TMP/folder --image-size 16 --patch 4
run latents "30 x 4x8x8, 5 classes" --data $TMP/lat.npy --latent-scale 0.18215 --patch 2 --learn-sigma
run fastdit "12 x 4x8x8, 3 classes" --data $TMP/fd --patch 2
check "a 3-channel model from RGB data" $PY -c "
import numpy as np; a = np.load('$TMP/folder/s.npy'); assert a.shape == (4, 3, 16, 16), a.shape"
check "a 4-channel model from latents" $PY -c "
import numpy as np; a = np.load('$TMP/latents/s.npy'); assert a.shape == (4, 4, 8, 8), a.shape"
expect_ok "probe finds the checkpoint's data" $DDM probe --ckpt $TMP/folder/ckpt.safetensors --n-train 9 --n-test 9 --epochs 1 --knn-k 3 --threads 2
expect_fail "data that does not fit the checkpoint on resume" "the model expects" $DDM train --resume $TMP/cifar/ckpt.safetensors --data $TMP/lat.npy --steps 3 --out $TMP/cifar
finish
