#!/usr/bin/env bash
# `ddm forward` against an independent PyTorch implementation (tools/check_forward.py) loading the
# same safetensors checkpoint: model output and a block output, raw and EMA weights, SiT and DDPM.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
# a high learning rate for a few steps moves every tensor (adaLN-Zero starts at zero) away from init
expect_ok "train conditional" $DDM train --depth 3 --hidden 32 --heads 4 --patch 4 --learn-sigma --batch 8 --steps 5 --lr 3e-2 --ema 0.5 --disp infonce_l2 --out $TMP/a
expect_ok "train ddpm unconditional" $DDM train --depth 2 --hidden 24 --heads 2 --patch 7 --unconditional --objective ddpm --batch 8 --steps 5 --lr 3e-2 --out $TMP/b
$PY -c "
import numpy as np
r = np.random.default_rng(0)
np.save('$TMP/x.npy', r.standard_normal((5, 1, 28, 28)).astype(np.float32))
np.save('$TMP/t.npy', np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32))
np.save('$TMP/td.npy', np.array([0, 1, 250, 998, 999], np.float32))
np.save('$TMP/y.npy', np.array([0, 3, 9, 10, 5], np.int64))
"
for ema in "" "--ema"; do
    expect_ok "forward $ema" $DDM forward --ckpt $TMP/a/ckpt.safetensors --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --out $TMP/o.npy --block 1 --block-out $TMP/z.npy $ema
    expect_ok "PyTorch agrees $ema" $PY tools/check_forward.py --ckpt $TMP/a/ckpt.safetensors --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --out $TMP/o.npy --block 1 --block-out $TMP/z.npy $ema
done
check "output has learned-sigma channels" $PY -c "import numpy as np, sys; sys.exit(0 if np.load('$TMP/o.npy').shape == (5, 2, 28, 28) else 1)"
expect_ok "forward ddpm" $DDM forward --ckpt $TMP/b/ckpt.safetensors --x $TMP/x.npy --t $TMP/td.npy --out $TMP/o2.npy
expect_ok "PyTorch agrees ddpm" $PY tools/check_forward.py --ckpt $TMP/b/ckpt.safetensors --x $TMP/x.npy --t $TMP/td.npy --out $TMP/o2.npy
# the check can fail: a perturbed output is rejected
$PY -c "import numpy as np; a = np.load('$TMP/o2.npy'); a[0, 0, 0, 0] += 0.05; np.save('$TMP/o3.npy', a)"
rejects() { $PY tools/check_forward.py "$@" > /dev/null 2>&1; [ $? -eq 1 ]; }   # 1 = out of tolerance (2 = bad input)
check "a perturbed output is rejected" rejects --ckpt $TMP/b/ckpt.safetensors --x $TMP/x.npy --t $TMP/td.npy --out $TMP/o3.npy
finish
