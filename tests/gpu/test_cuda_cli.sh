#!/usr/bin/env bash
# The CUDA device end to end, from the command line: 200 steps of Fashion-MNIST training whose loss curve follows
# the CPU run's, a GPU run stopped and resumed bit-identical to an uninterrupted one, sampling on the GPU against
# the CPU, a CUDA-trained checkpoint checked by `ddm forward` (CPU and GPU) against PyTorch (tools/check_forward.py),
# and every command (l-DAE, DDPM, probe, CFG sampling) running on the device. Skipped (exit 0, one line) without a GPU.
#   DDM=build/ddm PY=python3 DATA=<Fashion-MNIST dir> bash tests/gpu/test_cuda_cli.sh [CURVES_CSV]
# tests/gpu/run.sh runs it; CURVES_CSV (optional) receives the four loss curves. DDM_TEST_DEVICE=cpu-isolated
# runs it with that device in the GPU's place: a self-test of the script on a machine without a GPU (STEPS=20
# shortens the curves for it; the tail window is then a quarter of the run).
PY=${PY:-python3}
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
GDEV=${DDM_TEST_DEVICE:-cuda}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
CURVES=${1:-$TMP/curves.csv}
THREADS=$(nproc)
D="--data $DATA --threads $THREADS"

probe=$($DDM train $TINY --batch 2 --steps 1 --device $GDEV $D --out $TMP/probe 2>&1)
if echo "$probe" | grep -q "no usable CUDA GPU"; then
    echo "test_cuda_cli: skipped: no GPU ($(echo "$probe" | grep -o 'no usable CUDA GPU.*'))"
    exit 0
fi

# ---- 200 steps of Fashion-MNIST: the loss curve of each GPU precision against the CPU's (same seed: same batches,
# noise and times; only the arithmetic differs). Tolerances on the diffusion part of the loss (the Dispersive part
# sits near its floor -log B and crosses zero): strict fp32 and TF32 within 2% at every step and 0.5% over the
# last 50 steps (float differences grow through 200 Adam steps, but stay far below the batch-to-batch noise);
# bf16 within 5% at every step and 1.5% over the last 50 (test_bf16.c saw 0.12% after 40 steps on the CPU; the
# bounds allow for 5x more steps).
STEPS=${STEPS:-200}
M="--depth 4 --hidden 64 --heads 4 --patch 4 --batch 32 --steps $STEPS --log-every 1 --seed 3 --disp infonce_l2 --lr 3e-4 --clip 1 --ema 0.99"
expect_ok "cpu: $STEPS steps" $DDM train $M $D --device cpu --out $TMP/c32
expect_ok "cuda fp32 (TF32): $STEPS steps" $DDM train $M $D --device $GDEV --out $TMP/g32
expect_ok "cuda strict fp32: $STEPS steps" env DDM_CUDA_TF32=0 $DDM train $M $D --device $GDEV --out $TMP/gstrict
expect_ok "cuda bf16: $STEPS steps" $DDM train $M $D --device $GDEV --precision bf16 --out $TMP/g16
check "loss curves follow the CPU's" $PY - "$TMP" "$CURVES" "$STEPS" <<'EOF'
import json, sys
tmp, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
W = min(50, steps // 4)
def curve(run):
    return [json.loads(l)["loss_diff"] for l in open(f"{tmp}/{run}/log.jsonl") if '"loss_diff"' in l]
ref = curve("c32")
ok = len(ref) == steps
with open(out, "w") as f:
    runs = {"g32": (0.02, 0.005), "gstrict": (0.02, 0.005), "g16": (0.05, 0.015)}
    curves = {r: curve(r) for r in runs}
    f.write("step,cpu," + ",".join(runs) + "\n")
    for s in range(len(ref)):
        f.write(f"{s + 1},{ref[s]:.6g}," + ",".join(f"{curves[r][s]:.6g}" if s < len(curves[r]) else "" for r in runs) + "\n")
    for r, (step_tol, tail_tol) in runs.items():
        c = curves[r]
        if len(c) != len(ref):
            print(f"{r}: {len(c)} steps logged"); ok = False; continue
        worst = max(abs(a - b) / abs(b) for a, b in zip(c, ref))
        tail = abs(sum(c[-W:]) - sum(ref[-W:])) / abs(sum(ref[-W:]))
        good = worst <= step_tol and tail <= tail_tol
        print(f"{r}: worst step {worst:.4f} (<= {step_tol}), last-{W} mean {tail:.4f} (<= {tail_tol}), "
              f"loss {c[0]:.4f} -> {sum(c[-W:]) / W:.4f} (cpu {ref[0]:.4f} -> {sum(ref[-W:]) / W:.4f}) {'OK' if good else 'FAIL'}")
        ok &= good
ok &= sum(ref[-W:]) / W < ref[0]
sys.exit(0 if ok else 1)
EOF

# ---- resume on the GPU: bit-identical to the uninterrupted run (the backend is deterministic), fp32 and bf16
R="$TINY --batch 6 --flip --disp infonce_l2 --disp-blocks all --schedule cosine --warmup 2 --lr 1e-3 --clip 0.5 --ema 0.9 --seed 5 --log-every 1 --device $GDEV $D"
for prec in fp32 bf16; do
    expect_ok "$prec: straight run" $DDM train $R --precision $prec --steps 6 --out $TMP/r_$prec/a
    expect_ok "$prec: first half" $DDM train $R --precision $prec --steps 3 --out $TMP/r_$prec/b
    expect_ok "$prec: resumed" $DDM train --resume $TMP/r_$prec/b/ckpt.safetensors --steps 6 --device $GDEV $D --out $TMP/r_$prec/b
    check "$prec: resumed checkpoint bit-identical" cmp -s $TMP/r_$prec/a/ckpt.safetensors $TMP/r_$prec/b/ckpt.safetensors
done
expect_ok "a GPU run twice" $DDM train $R --steps 6 --out $TMP/r_fp32/again
check "two GPU runs bit-identical" cmp -s $TMP/r_fp32/a/ckpt.safetensors $TMP/r_fp32/again/ckpt.safetensors

# ---- sampling, GPU against CPU, from the CPU-trained checkpoint (Heun, CFG 2): strict fp32 to 1e-4 (rel. L2),
# TF32 to 1e-2, bf16 to 4e-2 (ten model calls, each with the step's product error)
S="--n 8 --batch 8 --steps 10 --cfg 2 --seed 1 --threads $THREADS"
expect_ok "sample cpu" $DDM sample --ckpt $TMP/c32/ckpt.safetensors $S --device cpu --out $TMP/sc.png --npy $TMP/sc.npy
expect_ok "sample cuda strict" env DDM_CUDA_TF32=0 $DDM sample --ckpt $TMP/c32/ckpt.safetensors $S --device $GDEV --out $TMP/ss.png --npy $TMP/ss.npy
expect_ok "sample cuda TF32" $DDM sample --ckpt $TMP/c32/ckpt.safetensors $S --device $GDEV --out $TMP/st.png --npy $TMP/st.npy
expect_ok "sample cuda bf16" $DDM sample --ckpt $TMP/c32/ckpt.safetensors $S --device $GDEV --precision bf16 --out $TMP/sb.png --npy $TMP/sb.npy
relcheck() {   # relcheck A.npy B.npy TOL
    $PY -c "
import numpy as np, sys
a, b = np.load('$1').astype(np.float64), np.load('$2').astype(np.float64)
e = np.linalg.norm(a - b) / np.linalg.norm(b)
print('  $(basename $1) vs $(basename $2): rel. L2 %.3g (<= $3)' % e)
sys.exit(0 if a.shape == b.shape and np.isfinite(a).all() and e <= $3 else 1)"
}
check "GPU strict sampling = CPU's" relcheck $TMP/ss.npy $TMP/sc.npy 1e-4
check "GPU TF32 sampling ~ CPU's" relcheck $TMP/st.npy $TMP/sc.npy 1e-2
check "GPU bf16 sampling ~ CPU's" relcheck $TMP/sb.npy $TMP/sc.npy 4e-2

# ---- a CUDA-trained checkpoint: the CPU reads it (same format), and `ddm forward` on either device agrees with
# PyTorch rebuilding the model from the file (TF32: tolerances x10 for its 10-bit inputs)
$PY -c "
import numpy as np
r = np.random.default_rng(0)
np.save('$TMP/x.npy', r.standard_normal((5, 1, 28, 28)).astype(np.float32))
np.save('$TMP/t.npy', np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32))
np.save('$TMP/y.npy', np.array([0, 3, 9, 10, 5], np.int64))"
F="--ckpt $TMP/g32/ckpt.safetensors --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --block 1"
for ema in "" "--ema"; do
    expect_ok "forward cpu $ema" $DDM forward $F --block-out $TMP/zc.npy --out $TMP/fc.npy --device cpu $ema
    expect_ok "PyTorch agrees with the CPU on a CUDA-trained checkpoint $ema" $PY tools/check_forward.py $F --block-out $TMP/zc.npy --out $TMP/fc.npy $ema
    expect_ok "forward cuda strict $ema" env DDM_CUDA_TF32=0 $DDM forward $F --block-out $TMP/zs.npy --out $TMP/fs.npy --device $GDEV $ema
    expect_ok "PyTorch agrees with the GPU (strict) $ema" $PY tools/check_forward.py $F --block-out $TMP/zs.npy --out $TMP/fs.npy $ema
    expect_ok "forward cuda TF32 $ema" $DDM forward $F --block-out $TMP/zt.npy --out $TMP/ft.npy --device $GDEV $ema
    expect_ok "PyTorch agrees with the GPU (TF32) $ema" $PY tools/check_forward.py $F --block-out $TMP/zt.npy --out $TMP/ft.npy --atol 1e-3 --rtol 1e-2 $ema
done
expect_ok "sample on the CPU from a CUDA-trained checkpoint" $DDM sample --ckpt $TMP/g32/ckpt.safetensors $S --device cpu --out $TMP/x1.png --npy $TMP/x1.npy
expect_ok "sample on the GPU from a CUDA-trained checkpoint" env DDM_CUDA_TF32=0 $DDM sample --ckpt $TMP/g32/ckpt.safetensors $S --device $GDEV --out $TMP/x2.png --npy $TMP/x2.npy
check "the two agree" relcheck $TMP/x2.npy $TMP/x1.npy 1e-4

# ---- everything else runs on the device: l-DAE (PCA tokenizer), DDPM with learned sigma, every Dispersive
# variant, DDPM/DDIM/SDE samplers, the linear probe
expect_ok "pca" $DDM pca --patch 7 --dim 4 --data $DATA --out $TMP/pca.safetensors
L="$TINY --batch 8 --steps 20 --seed 2 --log-every 1 $D"
expect_ok "l-DAE cpu" $DDM train $L --objective ldae --pca $TMP/pca.safetensors --device cpu --out $TMP/lc
expect_ok "l-DAE cuda strict" env DDM_CUDA_TF32=0 $DDM train $L --objective ldae --pca $TMP/pca.safetensors --device $GDEV --out $TMP/lg
check "l-DAE losses agree (1e-3 relative at every step)" $PY -c "
import json, sys
c = [json.loads(l)['loss'] for l in open('$TMP/lc/log.jsonl') if '\"loss\"' in l]
g = [json.loads(l)['loss'] for l in open('$TMP/lg/log.jsonl') if '\"loss\"' in l]
sys.exit(0 if len(c) == len(g) == 20 and max(abs(a - b) / abs(b) for a, b in zip(g, c)) < 1e-3 else 1)"
for v in infonce_cos hinge covariance; do
    expect_ok "dispersive $v on cuda" $DDM train $TINY --batch 8 --steps 3 --disp $v --device $GDEV $D --out $TMP/d_$v
done
expect_ok "ddpm learned sigma on cuda" $DDM train $TINY --batch 8 --steps 3 --objective ddpm --learn-sigma --device $GDEV --precision bf16 $D --out $TMP/ddpm
for s in ddpm ddim; do
    expect_ok "sample $s on cuda" $DDM sample --ckpt $TMP/ddpm/ckpt.safetensors --sampler $s --steps 4 --n 4 --device $GDEV --out $TMP/$s.png --npy $TMP/$s.npy
done
expect_ok "sample sde on cuda" $DDM sample --ckpt $TMP/g32/ckpt.safetensors --sampler sde --steps 4 --n 4 --device $GDEV --out $TMP/sde.png
expect_ok "probe on cuda" $DDM probe --ckpt $TMP/lg/ckpt.safetensors --block all --n-train 200 --n-test 100 --epochs 2 --device $GDEV --data $DATA --threads $THREADS
finish
