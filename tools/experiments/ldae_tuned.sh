#!/bin/bash
# docs/ldae.md "A tuned probe": the key runs of ldae.sh / ldae_long.sh and the baselines probed again with the
# linear probe trained to convergence (100 epochs, lr 0.3) and its weight decay chosen on a held-out 10% of
# the probe's training images (`--wd` list), so that every representation, raw pixels included, gets the
# regularisation that suits it. Every block (`--block all`). Needs the runs (it trains nothing); skips what is
# done and names what is missing.
#
#   OPENBLAS_CORETYPE=SKYLAKEX bash tools/experiments/ldae_tuned.sh
#
# Environment: DDM, OUT (default runs/ldae), THREADS (0 = all cores), PROBE_TRAIN / PROBE_TEST.
# The table: /usr/bin/python3 tools/experiments/tables.py ldae_tuned runs/ldae
set -euo pipefail
DDM=${DDM:-./build/ddm}
OUT=${OUT:-runs/ldae}
THREADS=${THREADS:-0}
PROBE_TRAIN=${PROBE_TRAIN:-20000}
PROBE_TEST=${PROBE_TEST:-10000}
TUNED=(--epochs 100 --lr 0.3 --wd 0,1e-5,1e-4,1e-3,1e-2 --val-frac 0.1 --threads "$THREADS")
SUBSET=(--n-train "$PROBE_TRAIN" --n-test "$PROBE_TEST")

# probe DIR FILE [probe flags...]: write DIR/FILE.json (and .txt) unless it is there
probe() {
    local dir=$1 file=$2; shift 2
    [ -f "$dir/$file.json" ] && return 0
    mkdir -p "$dir"
    "$DDM" probe "$@" "${TUNED[@]}" --json "$dir/$file.json" > "$dir/$file.txt"
}
# checkpoint runs: every block of the EMA weights, on the probe subset (and on all 60,000 with "full")
for name in traj_01_dit_baseline traj_11_ldae long_dit_3000 long_ldae_3000 mid_dit_cos6k mid_ldae_cos6k \
            mid_dit_cos6k_s1 mid_ldae_cos6k_s1 \
            mid_ldae_cos6k_crop35 p4_ldae_cos3k p2_ldae_cos3k long_ldae_cos18k wide_dit_1000 wide_ldae_1000 wide_ldae_cos10k \
            w_ldae_cos3k wd_ldae_cos3k d12_ldae_cos3k; do
    ck="$OUT/$name/ckpt.safetensors"
    if [ ! -f "$ck" ]; then echo "missing $ck: run ldae.sh / ldae_long.sh first" >&2; continue; fi
    probe "$OUT/$name" probe_tuned --ckpt "$ck" --block all --ema "${SUBSET[@]}"
done
for name in long_ldae_cos18k wide_ldae_cos10k; do
    [ -f "$OUT/$name/ckpt.safetensors" ] && probe "$OUT/$name" probe_tuned_full --ckpt "$OUT/$name/ckpt.safetensors" --block all --ema
done
probe "$OUT/base_pixels" probe_tuned --baseline pixels "${SUBSET[@]}"
probe "$OUT/base_pixels_full" probe_tuned --baseline pixels
probe "$OUT/base_pca_d4" probe_tuned --baseline pca --pca "$OUT/pca_d4.safetensors" "${SUBSET[@]}"
