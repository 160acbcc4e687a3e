#!/usr/bin/env bash
# Datasets of every format through `ddm data` against an independent reading in Python (PIL for images, numpy
# for CIFAR and latents): ImageFolder trees of PNG and JPEG (RGB, grey, alpha, palette, mixed sizes) with ADM's
# center_crop_arr byte for byte; CIFAR-10 and CIFAR-100 batches; latents as .npz and in fast-DiT's folders.
# Then the commands that read data (pca, probe, classifier, eval) on them, and the bad inputs of issue 15.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
D=$TMP/d
mkdir -p $D
$PY - "$D" <<'EOF' || exit 1
import os, sys
import numpy as np
from PIL import Image
D = sys.argv[1]
r = np.random.default_rng(0)

def img(w, h, c, seed):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(xx / 7.0 + seed), 128 + 100 * np.cos(yy / 5.0 + seed),
                     128 + 60 * np.sin((xx + yy) / 11.0)], -1)[..., :c]
    return np.clip(base + r.normal(0, 20, base.shape), 0, 255).astype(np.uint8)

# ImageFolder with train/ and val/: every kind of PNG and JPEG, sizes that need box halving, odd sizes,
# sizes below the crop (bicubic upsampling)
sizes = [(300, 200), (97, 131), (64, 64), (513, 257), (65, 130), (33, 32), (128, 129), (40, 1000), (10, 7), (5, 40)]
for split, n in (("train", 16), ("val", 6)):
    for cls in ("cat", "dog"):
        os.makedirs(f"{D}/if/{split}/{cls}", exist_ok=True)
    for i in range(n):
        cls = ("cat", "dog")[i % 2]
        w, h = sizes[i % len(sizes)]
        kind = i % 6
        p = f"{D}/if/{split}/{cls}/{i:03d}"
        if kind == 0: Image.fromarray(img(w, h, 3, i)).save(p + ".png")
        elif kind == 1: Image.fromarray(img(w, h, 3, i)).save(p + ".jpg", quality=90)
        elif kind == 2: Image.fromarray(img(w, h, 1, i)[..., 0], "L").save(p + ".JPEG", quality=90)
        elif kind == 3: Image.fromarray(img(w, h, 1, i)[..., 0], "L").save(p + ".png")
        elif kind == 4:
            a = np.concatenate([img(w, h, 3, i), r.integers(0, 256, (h, w, 1), dtype=np.uint8)], -1)
            Image.fromarray(a, "RGBA").save(p + ".png")
        else: Image.fromarray(img(w, h, 3, i)).convert("P", palette=Image.ADAPTIVE, colors=40).save(p + ".png")
open(f"{D}/if/train/cat/notes.txt", "w").write("not an image")
open(f"{D}/if/train/.DS_Store", "w").write("x")

# an all-grey tree of one size: 1 channel, no resize
for cls in ("a", "b", "c"):
    os.makedirs(f"{D}/grey/{cls}", exist_ok=True)
    for i in range(3):
        Image.fromarray(img(12, 10, 1, i)[..., 0], "L").save(f"{D}/grey/{cls}/{i}.png")

# CIFAR-10 and CIFAR-100
def cifar(path, n, label_bytes, seed):
    g = np.random.default_rng(seed)
    lab = g.integers(0, 10 if label_bytes == 1 else 100, (n, label_bytes), dtype=np.uint8)
    if label_bytes == 2: lab[:, 0] = lab[:, 1] // 5
    px = g.integers(0, 256, (n, 3072), dtype=np.uint8)
    np.concatenate([lab, px], 1).tofile(path)
os.makedirs(f"{D}/cifar-10-batches-bin", exist_ok=True)
for k in range(1, 6): cifar(f"{D}/cifar-10-batches-bin/data_batch_{k}.bin", 7, 1, k)
cifar(f"{D}/cifar-10-batches-bin/test_batch.bin", 5, 1, 9)
os.makedirs(f"{D}/c100", exist_ok=True)
cifar(f"{D}/c100/train.bin", 9, 2, 1); cifar(f"{D}/c100/test.bin", 4, 2, 2)

# latents: one .npz, and fast-DiT's folders
z = r.standard_normal((12, 4, 8, 8)).astype(np.float32)
y = (np.arange(12) % 5).astype(np.int64)
np.savez_compressed(f"{D}/lat.npz", latents=z, labels=y)
os.makedirs(f"{D}/fd/imagenet256_features"); os.makedirs(f"{D}/fd/imagenet256_labels")
for i in range(12):
    np.save(f"{D}/fd/imagenet256_features/{i}.npy", z[i:i + 1])
    np.save(f"{D}/fd/imagenet256_labels/{i}.npy", y[i:i + 1])
EOF

# --- ImageFolder: ADM's center_crop_arr, byte for byte against PIL
out=$($DDM data --data $D/if --image-size 16 --npy $TMP/if.npy --labels-npy $TMP/ify.npy --n 100 2>$TMP/if.err)
check "imagefolder described" grep -q "imagefolder $D/if/train (train): 16 x 3x16x16, 2 classes" <<< "$out"
check "skipped files named in one warning" grep -q "skipped 2 files that are not .png/.jpg/.jpeg images: .DS_Store, cat/notes.txt" $TMP/if.err
cat > $TMP/adm.py <<'EOF'
import sys, os
import numpy as np
from PIL import Image
def center_crop_arr(pil_image, image_size):   # guided-diffusion's image_datasets.py, as DiT/SiT use it
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y: crop_y + image_size, crop_x: crop_x + image_size]
root, size, mode, npy, ynpy = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
files = [(os.path.join(root, c, f), k) for k, c in enumerate(classes) for f in sorted(os.listdir(os.path.join(root, c)))
         if f.lower().endswith((".png", ".jpg", ".jpeg"))]
x, y = np.load(npy), np.load(ynpy)
assert len(files) == len(x), (len(files), x.shape)
worst = 0
for i, (f, k) in enumerate(files):
    im = Image.open(f).convert(mode)
    ref = center_crop_arr(im, size) if size else np.array(im)
    ref = ref.reshape(ref.shape[0], ref.shape[1], -1).transpose(2, 0, 1).astype(np.float32) / 255 * 2 - 1
    worst = max(worst, float(np.abs(ref - x[i]).max()))
    assert y[i] == k, (f, y[i], k)
print(f"max difference {worst:.3g} over {len(files)} images")
sys.exit(0 if worst == 0 else 1)
EOF
expect_ok "ADM crop == PIL (PNG and JPEG, RGB/grey/RGBA/palette)" $PY $TMP/adm.py $D/if/train 16 RGB $TMP/if.npy $TMP/ify.npy
$DDM data --data $D/if --split test --image-size 16 --npy $TMP/ifv.npy --labels-npy $TMP/ifvy.npy --n 100 > /dev/null 2>&1
expect_ok "val/ is the test split" $PY $TMP/adm.py $D/if/val 16 RGB $TMP/ifv.npy $TMP/ifvy.npy
$DDM data --data $D/if --image-size 8 --npy $TMP/if8.npy --labels-npy $TMP/if8y.npy --n 100 > /dev/null 2>&1
expect_ok "ADM crop at 8 (more box halving)" $PY $TMP/adm.py $D/if/train 8 RGB $TMP/if8.npy $TMP/if8y.npy
out=$($DDM data --data $D/grey --npy $TMP/g.npy --labels-npy $TMP/gy.npy 2>&1)
check "grey tree: 1 channel, own size" grep -q "9 x 1x10x12, 3 classes" <<< "$out"
expect_ok "grey tree pixels" $PY $TMP/adm.py $D/grey 0 L $TMP/g.npy $TMP/gy.npy
out=$($DDM data --data $D/if --image-size 16 --data-cache-mb 0 --check 2>&1)
check "every file read through the background loader" grep -q "checked: all 16 samples read" <<< "$out"
check "not cached: decoded when read" grep -q "decoded when read" <<< "$out"
out=$($DDM data --data $D/if --image-size 16 --json 2>/dev/null)
check "JSON description" $PY -c "
import json, sys; d = json.loads(sys.argv[1])
assert d['format'] == 'imagefolder' and d['shape'] == [3, 16, 16] and d['classes'] == ['cat', 'dog'] and d['n'] == 16, d" "$out"

expect_ok "dataset flags saved as a --config file" $DDM data --data $D/if --image-size 16 --data-cache-mb 0 --save-config $TMP/data.conf
check "and read back to the same description" test "$($DDM data --config $TMP/data.conf --json 2>/dev/null)" = "$($DDM data --data $D/if --image-size 16 --data-cache-mb 0 --json 2>/dev/null)"

# --- CIFAR
$DDM data --data $D --data-format cifar --npy $TMP/c.npy --labels-npy $TMP/cy.npy --n 100 > $TMP/c.out 2>&1
check "cifar-10 found below --data" grep -q "cifar $D/cifar-10-batches-bin (train): 35 x 3x32x32, 10 classes" $TMP/c.out
check "cifar-10 pixels and labels" $PY -c "
import numpy as np
raw = np.concatenate([np.fromfile('$D/cifar-10-batches-bin/data_batch_%d.bin' % k, np.uint8).reshape(-1, 3073) for k in range(1, 6)])
x, y = np.load('$TMP/c.npy'), np.load('$TMP/cy.npy')
assert np.array_equal(x, (raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255 * 2 - 1)) and np.array_equal(y, raw[:, 0])"
$DDM data --data $D/c100 --split test --npy $TMP/c1.npy --labels-npy $TMP/c1y.npy > /dev/null 2>&1
check "cifar-100 test: fine labels" $PY -c "
import numpy as np
raw = np.fromfile('$D/c100/test.bin', np.uint8).reshape(-1, 3074)
assert np.array_equal(np.load('$TMP/c1y.npy'), raw[:, 1]) and np.load('$TMP/c1.npy').shape == (4, 3, 32, 32)"

# --- latents: .npz with a scale, fast-DiT folders
$DDM data --data $D/lat.npz --latent-scale 0.18215 --latent-shift 0.5,0,0,-1 --npy $TMP/l.npy --labels-npy $TMP/ly.npy --n 100 > $TMP/l.out 2>&1
check "npz latents, scale and shift applied" $PY -c "
import numpy as np
a = np.load('$D/lat.npz'); z = a['latents']; sh = np.array([0.5, 0, 0, -1], np.float32)[None, :, None, None]
got = np.load('$TMP/l.npy')
assert np.array_equal(got, ((z - sh) * np.float32(0.18215)).astype(np.float32)), np.abs(got - (z - sh) * 0.18215).max()
assert np.array_equal(np.load('$TMP/ly.npy'), a['labels'])"
$DDM data --data $D/fd --npy $TMP/f.npy --labels-npy $TMP/fy.npy --n 100 > $TMP/f.out 2>&1
check "fast-DiT folders: features paired with labels by name" $PY -c "
import numpy as np, os
names = sorted(os.listdir('$D/fd/imagenet256_features'))
z = np.stack([np.load('$D/fd/imagenet256_features/' + n)[0] for n in names])
y = np.array([np.load('$D/fd/imagenet256_labels/' + n)[0] for n in names])
assert np.array_equal(np.load('$TMP/f.npy'), z) and np.array_equal(np.load('$TMP/fy.npy'), y)"

# --- the commands that read data, on these formats
expect_ok "probe pixels on CIFAR" $DDM probe --baseline pixels --data $D/cifar-10-batches-bin --epochs 2 --threads 2
expect_ok "pca on latents" $DDM pca --data $D/lat.npz --patch 2 --dim 4 --patches 200 --out $TMP/pca.safetensors --threads 2
expect_ok "classifier on an ImageFolder" $DDM classifier train --data $D/if --image-size 16 --arch 8,M,8 --epochs 1 --batch 8 --out $TMP/cls.safetensors --threads 2
expect_ok "classifier eval on its val/" $DDM classifier eval --data $D/if --image-size 16 --ckpt $TMP/cls.safetensors --threads 2
expect_ok "eval against an ImageFolder reference" $DDM eval --classifier $TMP/cls.safetensors --samples $TMP/ifv.npy --data $D/if --image-size 16 --n 6 --k 2 --kid-size 3 --threads 2
expect_ok "probe with --test-data" $DDM probe --baseline pixels --data $D/grey --test-data $D/grey --epochs 1 --threads 2

# --- a checkpoint that records its data (metadata "dataset", data_describe_json): probe and eval default to it
$PY - $D/mnistlike <<'PYEOF'
import os, struct, sys
import numpy as np
d = sys.argv[1]; os.makedirs(d); r = np.random.default_rng(1)
for split, n in (("train", 40), ("t10k", 12)):
    open(f"{d}/{split}-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + r.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes())
    open(f"{d}/{split}-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, n) + (np.arange(n) % 3).astype(np.uint8).tobytes())
PYEOF
expect_ok "tiny run" $DDM train $TINY --batch 4 --steps 1 --out $TMP/run --threads 2
desc=$($DDM data --data $D/mnistlike --json 2>/dev/null)
$PY -c "
import sys; sys.path.insert(0, 'tools'); import st
t, m = st.load('$TMP/run/ckpt.safetensors'); m['dataset'] = sys.argv[1]; st.save('$TMP/rec.safetensors', t, m)" "$desc"
out=$($DDM probe --ckpt $TMP/rec.safetensors --epochs 1 --threads 2 2>&1)
check "probe reads the data the checkpoint records" grep -q "data: $D/mnistlike, as recorded in $TMP/rec.safetensors" <<< "$out"
check "its 40 / 12 images, 3 classes" grep -q "40 train / 12 test images, 3 classes" <<< "$out"
out=$($DDM probe --ckpt $TMP/rec.safetensors --data $D/mnistlike/train-images-idx3-ubyte --n-train 20 --epochs 1 --threads 2 2>&1)
check "--data overrides the record" grep -q "20 train / 12 test images" <<< "$out"

# --- bad inputs: one line naming the file and what was expected
B=$TMP/bad
mkdir -p $B/cls/a $B/cls/b
cp $D/grey/a/0.png $B/cls/a/; cp $D/grey/b/1.png $B/cls/b/
printf 'definitely not a png' > $B/cls/b/2.png
expect_fail "non-image named .png" "$B/cls/b/2.png: not a PNG or JPEG image" $DDM data --data $B/cls
rm $B/cls/b/2.png
head -c 300 $D/if/train/dog/001.jpg > $B/cls/b/3.jpg
expect_fail "truncated JPEG" "$B/cls/b/3.jpg: truncated JPEG" $DDM data --data $B/cls --image-size 8
rm $B/cls/b/3.jpg
cp $D/if/train/cat/000.png $B/cls/b/4.png
expect_fail "mixed sizes" "the images differ in size; pass --image-size" $DDM data --data $B/cls
rm $B/cls/b/4.png
mkdir $B/cls/c
expect_fail "empty class folder" "$B/cls/c: empty class folder" $DDM data --data $B/cls
expect_fail "an ImageFolder has no test split" "has one split; give the test images with --test-data" $DDM probe --baseline pixels --data $D/grey
mkdir -p $B/c10 && cp $D/cifar-10-batches-bin/*.bin $B/c10/
head -c 20000 $D/cifar-10-batches-bin/data_batch_2.bin > $B/c10/data_batch_2.bin
expect_fail "CIFAR wrong length" "$B/c10/data_batch_2.bin: 20000 bytes is not a whole number of 3073-byte CIFAR-10 records" $DDM data --data $B/c10
$PY -c "import numpy as np; np.savez('$B/n.npz', latents=np.zeros((5, 4, 2, 2), np.float32), labels=np.arange(4))"
expect_fail "latents count != labels count" "4 labels, but $B/n.npz:latents.npy holds 5 latents" $DDM data --data $B/n.npz
expect_fail "unknown --data-format" "--data-format 'tfrecord': expected auto, idx, imagefolder, cifar or latents" $DDM data --data $D/lat.npz --data-format tfrecord
expect_fail "--image-size on CIFAR" "--image-size 16 applies to an ImageFolder" $DDM probe --baseline pixels --data $D/cifar-10-batches-bin --image-size 16
expect_fail "--latent-scale on images" "--latent-scale / --latent-shift apply to latents" $DDM data --data $D/grey --latent-scale 0.18215
mkdir -p $B/none && echo hello > $B/none/readme.txt
expect_fail "nothing recognisable" "$B/none: no dataset found" $DDM data --data $B/none
finish
