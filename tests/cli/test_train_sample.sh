#!/usr/bin/env bash
# End to end on tiny models: every objective trains, every sampler writes a PNG grid and .npy,
# and the EMA/raw and guidance options work.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
for obj in sit_linear sit_gvp ddpm; do
    expect_ok "train $obj" $DDM train $TINY --batch 4 --steps 2 --objective $obj --disp hinge --out $TMP/$obj
done
check "log has all fields" grep -q '"loss_diff":.*"loss_disp":.*"grad_norm":.*"img_per_s"' $TMP/sit_linear/log.jsonl
for s in heun euler sde; do
    expect_ok "sample $s" $DDM sample --ckpt $TMP/sit_linear/ckpt.safetensors --sampler $s --steps 3 --n 6 --out $TMP/$s.png --npy $TMP/$s.npy
    check "$s PNG" test "$(head -c 8 $TMP/$s.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
done
expect_ok "sample gvp" $DDM sample --ckpt $TMP/sit_gvp/ckpt.safetensors --steps 3 --n 4 --out $TMP/gvp.png
for s in ddpm ddim; do
    expect_ok "sample $s" $DDM sample --ckpt $TMP/ddpm/ckpt.safetensors --sampler $s --steps 4 --n 4 --out $TMP/$s.png --npy $TMP/$s.npy
done
expect_ok "cfg, raw weights, fixed class" $DDM sample --ckpt $TMP/sit_linear/ckpt.safetensors --steps 2 --n 4 --cfg 4 --raw --class 3 --out $TMP/cfg.png
check "npy shape" $PY -c "import numpy as np, sys; a = np.load('$TMP/heun.npy'); sys.exit(0 if a.shape == (6, 1, 28, 28) and a.dtype == np.float32 else 1)"
check "ddim npy finite" $PY -c "import numpy as np, sys; a = np.load('$TMP/ddim.npy'); sys.exit(0 if np.isfinite(a).all() else 1)"
expect_ok "unconditional" $DDM train $TINY --unconditional --learn-sigma --batch 4 --steps 1 --out $TMP/unc
expect_ok "sample unconditional" $DDM sample --ckpt $TMP/unc/ckpt.safetensors --steps 2 --n 2 --out $TMP/unc.png
expect_fail "cfg without classes" "class-conditional" $DDM sample --ckpt $TMP/unc/ckpt.safetensors --cfg 2 --out $TMP/x.png
expect_ok "nested run directory is created" $DDM train $TINY --batch 2 --steps 1 --out $TMP/deep/er/run
check "nested checkpoint" test -s $TMP/deep/er/run/ckpt.safetensors
touch $TMP/afile
expect_fail "run directory under a file" "cannot create the directory" $DDM train $TINY --batch 2 --steps 1 --out $TMP/afile/run
expect_ok "boolean flag with a value" $DDM train $TINY --flip 0 --unconditional=false --batch 2 --steps 1 --out $TMP/bool
expect_fail "boolean flag with a bad value" "--flip 'maybe': expected 1/0" $DDM train $TINY --flip=maybe --steps 1 --out $TMP/bool
for c in train sample forward; do
    check "$c --help" $DDM $c --help > /dev/null
done
finish
