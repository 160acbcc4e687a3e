#!/usr/bin/env bash
# The device boundary, checked from outside: a tiny train (with Dispersive Loss, the monitor, a resume), l-DAE
# training, sampling, forward and probe on `--device cpu` and on `--device cpu-isolated` (whose memory the host
# cannot read) write byte-identical files. And a bad --device is one line naming this build's devices.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
T="$TINY --batch 6 --log-every 1 --threads 2 --seed 3 --erank-every 2 --erank-n 12"
expect_ok "pca" $DDM pca --patch 7 --dim 4 --out $TMP/pca.safetensors
$PY -c "import numpy as np; r=np.random.default_rng(0); np.save('$TMP/x.npy', r.standard_normal((3,1,28,28)).astype(np.float32)); np.save('$TMP/t.npy', np.array([0.1,0.5,0.9],np.float32)); np.save('$TMP/y.npy', np.array([1,10,4],np.float32))"
for dev in cpu cpu-isolated; do
    o=$TMP/$dev
    expect_ok "$dev: train" $DDM train $T --steps 3 --disp infonce_l2 --disp-blocks all --flip --lr 1e-3 --clip 0.5 --device $dev --out $o/sit
    expect_ok "$dev: resume" $DDM train --resume $o/sit/ckpt.safetensors --steps 5 --threads 2 --erank-every 2 --erank-n 12 --device $dev --out $o/sit
    expect_ok "$dev: l-DAE bf16" $DDM train $T --steps 3 --objective ldae --pca $TMP/pca.safetensors --precision bf16 --device $dev --out $o/ldae
    expect_ok "$dev: sample" $DDM sample --ckpt $o/sit/ckpt.safetensors --n 8 --batch 3 --steps 3 --cfg 2 --threads 2 --device $dev --out $o/s.png --npy $o/s.npy
    expect_ok "$dev: forward" $DDM forward --ckpt $o/sit/ckpt.safetensors --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --block 1 --block-out $o/z.npy --ema --threads 2 --device $dev --out $o/f.npy
    expect_ok "$dev: probe" $DDM probe --ckpt $o/ldae/ckpt.safetensors --block all --n-train 200 --n-test 100 --epochs 2 --threads 2 --device $dev --save-features $o/feat.safetensors
done
for f in sit/ckpt.safetensors ldae/ckpt.safetensors s.png s.npy f.npy z.npy; do
    check "$f identical on cpu and cpu-isolated" cmp $TMP/cpu/$f $TMP/cpu-isolated/$f
done
# the probe's features file names its checkpoint (a different path per device): compare its tensors' bytes
check "probe features identical on cpu and cpu-isolated" $PY -c "
import sys; sys.path.insert(0, 'tools'); import st
a, _ = st.load('$TMP/cpu/feat.safetensors'); b, _ = st.load('$TMP/cpu-isolated/feat.safetensors')
sys.exit(not (a.keys() == b.keys() and len(a) == 6 and all(a[k].tobytes() == b[k].tobytes() for k in a)))"
expect_fail "cuda in a build without it" "no CUDA backend" $DDM forward --ckpt $TMP/cpu/sit/ckpt.safetensors --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --out $TMP/f.npy --device cuda
strip() { grep '"loss"\|erank' "$1" | sed 's/,"img_per_s":[^,]*,"disp_time_share":[^,}]*//'; }
check "the same log on both devices" diff <(strip $TMP/cpu/sit/log.jsonl) <(strip $TMP/cpu-isolated/sit/log.jsonl)
expect_fail "unknown device" "--device 'gpu0': unknown device (this build has: cpu, cpu-isolated" $DDM sample --ckpt $TMP/cpu/sit/ckpt.safetensors --device gpu0
expect_fail "unknown device (train)" "unknown device" $DDM train $TINY --steps 1 --device tpu --out $TMP/bad
if ! $DDM train --help | grep -q -- "--device"; then bad "train --help lists --device"; else ok; fi
finish
