#!/usr/bin/env bash
# The CPU kernels at every x86-64 level this CPU has ($DDM_CPU_ISA, cpu_dispatch.c): a short train and sample at
# each agree with the highest level within a tolerance (and, where the FMA contraction is the same, bit for bit);
# the chosen level is logged; an unknown level, and a level the CPU lacks, are refused with one clear line. Under
# qemu-user (when installed) the binary starts on an older CPU model and chooses, or refuses, accordingly.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

flags() { grep -m1 '^flags' /proc/cpuinfo; }
has_all() { local f; for f in "$@"; do flags | grep -qw "$f" || return 1; done; }
has_level() {
    case $1 in
        v2) has_all sse4_2 popcnt ;;
        v3) has_level v2 && has_all avx2 fma bmi1 bmi2 movbe f16c ;;
        v4) has_level v3 && has_all avx512f avx512bw avx512cd avx512dq avx512vl ;;
    esac
}

ARGS="$TINY --batch 6 --disp infonce_l2 --lr 1e-3 --seed 5 --steps 3 --log-every 1 --threads 2"
levels=()
for l in v2 v3 v4; do
    if has_level $l; then
        levels+=($l)
        out=$(DDM_CPU_ISA=$l $DDM train $ARGS --out $TMP/$l 2>&1)
        check "train at $l: $out" test $? -eq 0
        check "the log names x86-64-$l" grep -q "device [a-z-]*, kernels x86-64-$l " <<< "$out"
        expect_ok "sample at $l" env DDM_CPU_ISA=$l $DDM sample --ckpt $TMP/$l/ckpt.safetensors --n 4 --steps 4 \
            --out $TMP/$l.png --npy $TMP/$l.npy --threads 2
    else
        expect_fail "$l refused on this CPU" "DDM_CPU_ISA=$l: this CPU lacks x86-64-$l" env DDM_CPU_ISA=$l $DDM train $ARGS --out $TMP/$l
    fi
done
expect_fail "unknown level" "DDM_CPU_ISA=v9: unknown level (expected one of: v2, v3, v4)" env DDM_CPU_ISA=v9 $DDM train $ARGS --out $TMP/x
best=${levels[-1]}
check "the default is the highest level ($best)" bash -c "$DDM bench --help > /dev/null && $DDM train $ARGS --steps 1 --out $TMP/d 2>&1 | grep -q 'kernels x86-64-$best '"

close() {   # relative L2 distance of two .npy files or of two checkpoints' weights below tol
    $PY - "$@" <<'PYEOF'
import sys, numpy as np
sys.path.insert(0, "tools")
import st
def load(p):
    if p.endswith(".npy"): return np.load(p).ravel()
    t = st.load(p)[0]
    return np.concatenate([t[k].ravel().astype(np.float64) for k in sorted(t)])
a, b = load(sys.argv[1]), load(sys.argv[2])
r = float(np.linalg.norm(a - b) / np.linalg.norm(b))
sys.exit(0 if r < float(sys.argv[3]) else 1)
PYEOF
}
for l in "${levels[@]}"; do
    [ $l = $best ] && continue
    check "$l weights within 1e-4 of $best" close $TMP/$l/ckpt.safetensors $TMP/$best/ckpt.safetensors 1e-4
    check "$l samples within 1e-3 of $best" close $TMP/$l.npy $TMP/$best.npy 1e-3
done
# v3 and v4 both contract a*b+c to FMA and vectorise only element-wise loops (every sum runs in order), so they
# compute the same bits; v2 (no FMA) rounds differently.
if has_level v4; then
    check "v3 and v4 train bit for bit alike" cmp -s $TMP/v3/ckpt.safetensors $TMP/v4/ckpt.safetensors
    check "v3 and v4 sample bit for bit alike" cmp -s $TMP/v3.npy $TMP/v4.npy
fi

if command -v qemu-x86_64 > /dev/null; then
    # Haswell: x86-64-v3; Nehalem: x86-64-v2, no AVX; core2duo: below x86-64-v2 (a -march=native build dies there
    # on an illegal instruction)
    out=$(qemu-x86_64 -cpu Haswell $DDM train $ARGS --steps 1 --threads 1 --out $TMP/q 2>&1)
    check "qemu Haswell: trains at v3: $out" grep -q "kernels x86-64-v3 " <<< "$out"
    out=$(qemu-x86_64 -cpu Nehalem $DDM train $ARGS --steps 1 --threads 1 --out $TMP/q 2>&1)
    check "qemu Nehalem: trains at v2: $out" grep -q "kernels x86-64-v2 " <<< "$out"
    expect_fail "qemu Nehalem: v3 refused" "DDM_CPU_ISA=v3: this CPU lacks x86-64-v3 (AVX2, FMA); it has: v2" \
        env DDM_CPU_ISA=v3 qemu-x86_64 -cpu Nehalem $DDM train $ARGS --out $TMP/q
    expect_fail "qemu core2duo: refused with one line" "this CPU lacks x86-64-v2 (SSE4.2)" \
        qemu-x86_64 -cpu core2duo $DDM train $ARGS --out $TMP/q
else
    echo "test_cpu_isa.sh: no qemu-user (qemu-x86_64): older CPU models not tried"
fi
finish
