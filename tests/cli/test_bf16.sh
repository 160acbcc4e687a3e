#!/usr/bin/env bash
# --precision bf16 from the command line: recorded in the checkpoint, bit-exact resume, sample and
# forward, bench --gemm; one clear line for a bad name, or on a CPU without AVX512_BF16. No timings.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

expect_fail "unknown precision" "--precision 'fp16': expected fp32, bf16 or auto" $DDM train $TINY --precision fp16 --steps 1 --out $TMP/r0
expect_fail "unknown precision (bench)" "expected fp32, bf16 or auto" $DDM bench --precision half
if ! grep -qw avx512_bf16 /proc/cpuinfo; then
    expect_fail "bf16 without AVX512_BF16" "AVX512_BF16" $DDM train $TINY --precision bf16 --steps 1 --out $TMP/r0
    echo "test_bf16.sh: this CPU has no AVX512_BF16: the bf16 runs are skipped"
    finish; exit
fi

ARGS="$TINY --batch 6 --disp infonce_l2 --lr 1e-3 --seed 3 --log-every 1 --threads 2 --precision bf16"
expect_ok "bf16 run" $DDM train $ARGS --steps 4 --out $TMP/a
expect_ok "first half" $DDM train $ARGS --steps 2 --out $TMP/b
expect_ok "resumed half (the checkpoint's precision)" $DDM train --resume $TMP/b/ckpt.safetensors --steps 4 --out $TMP/b --log-every 1 --threads 2
check "bf16 resume is bit-identical" cmp -s $TMP/a/ckpt.safetensors $TMP/b/ckpt.safetensors
prec() { $PY -c "import json,struct; f=open('$1','rb'); n=struct.unpack('<Q',f.read(8))[0]; print(json.loads(json.loads(f.read(n))['__metadata__']['config'])['train']['precision'])"; }
check "checkpoint config records bf16" test "$(prec $TMP/a/ckpt.safetensors)" = bf16
expect_ok "fp32 run" $DDM train ${ARGS/--precision bf16/} --steps 4 --out $TMP/c
check "checkpoint config records fp32" test "$(prec $TMP/c/ckpt.safetensors)" = fp32
check_not "bf16 and fp32 runs differ" cmp -s $TMP/a/ckpt.safetensors $TMP/c/ckpt.safetensors
expect_ok "resume an fp32 run in bf16" $DDM train --resume $TMP/c/ckpt.safetensors --steps 5 --out $TMP/c --precision bf16
check "an explicit --precision on resume is recorded" test "$(prec $TMP/c/ckpt.safetensors)" = bf16

# sampling and one forward pass in both precisions from the same weights: close, not equal
for p in fp32 bf16; do
    expect_ok "sample $p" $DDM sample --ckpt $TMP/a/ckpt.safetensors --n 4 --steps 5 --out $TMP/s_$p.png --npy $TMP/s_$p.npy --precision $p
done
$PY - $TMP <<'PYEOF'
import numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(0)
np.save(d + "/x.npy", rng.standard_normal((3, 1, 28, 28)).astype(np.float32))
np.save(d + "/t.npy", np.array([0.1, 0.5, 0.9], np.float32))
np.save(d + "/y.npy", np.array([0, 3, 10], np.float32))
PYEOF
for p in fp32 bf16; do
    expect_ok "forward $p" $DDM forward --ckpt $TMP/a/ckpt.safetensors --x $TMP/x.npy --t $TMP/t.npy --y $TMP/y.npy --out $TMP/f_$p.npy --precision $p
done
close() {   # relative L2 distance of two .npy files in (0, tol); SHOW=1 prints it
    $PY - "$1" "$2" "$3" <<'PYEOF'
import numpy as np, os, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
r = float(np.linalg.norm(a - b) / np.linalg.norm(b))
if os.environ.get("SHOW") or not 0 < r < float(sys.argv[3]): print("  rel. L2", r)
sys.exit(0 if 0 < r < float(sys.argv[3]) else 1)
PYEOF
}
check "bf16 samples within 5% of fp32 (rel. L2)" close $TMP/s_bf16.npy $TMP/s_fp32.npy 0.05
check "bf16 forward within 2% of fp32 (rel. L2)" close $TMP/f_bf16.npy $TMP/f_fp32.npy 0.02

# probe features in both precisions (every block, as .npy via --save-features): close, not equal
for p in fp32 bf16; do
    expect_ok "probe $p" $DDM probe --ckpt $TMP/a/ckpt.safetensors --block all --n-train 200 --n-test 100 --epochs 2 \
        --precision $p --json $TMP/p_$p.json --save-features $TMP/p_$p.safetensors
    $PY - $TMP/p_$p.safetensors $TMP/p_$p.npy <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "tools")
import st
t = st.load(sys.argv[1])[0]
np.save(sys.argv[2], np.concatenate([t[k].ravel() for k in sorted(t) if not k.endswith("labels")]))
PYEOF
done
check "bf16 probe features within 2% of fp32 (rel. L2)" close $TMP/p_bf16.npy $TMP/p_fp32.npy 0.02
check "probe JSON records the precision" test "$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['precision'])" $TMP/p_bf16.json)" = bf16
expect_fail "probe --precision with a pixel baseline" "--baseline pixels uses no network" $DDM probe --baseline pixels --precision bf16

expect_ok "--precision auto" $DDM train $TINY --batch 4 --steps 1 --precision auto --out $TMP/auto
want=fp32; grep -q avx512_bf16 /proc/cpuinfo && want=bf16
check "auto records the precision it chose ($want)" $PY -c "
import sys, json; sys.path.insert(0, 'tools'); import st
_, m = st.load('$TMP/auto/ckpt.safetensors'); assert json.loads(m['config'])['train']['precision'] == '$want'"
out=$($DDM bench --gemm --model tiny --gemm-reps 1 --threads 1 2>&1)
check "bench --gemm prints the table" grep -q "these matrix multiplies per training step" <<< "$out"
check "bench --gemm lists attention" grep -q "attn dK" <<< "$out"
finish
