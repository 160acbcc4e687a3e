#!/bin/bash
# The README's main job (issue 17): candidate recipes for configs/demo.conf, each trained once (seed 0) and judged
# by FD-CNN of 1000 samples (25-step Heun, no guidance, classes cycled; from the EMA and from the raw weights) against
# 1000 training images, with the domain classifier CLASSIFIER (docs/demo.md says which one). docs/demo.md has the
# table; the cost of a recipe is measured separately (CPU time per step, docs/demo.md), not by these runs' wall time.
#   bash tools/experiments/demo_recipe.sh        # into runs/demo_recipe
# Environment: DDM, OUT, CLASSIFIER, ONLY (names of the candidates to run), TRAIN_ONLY=1 (train, evaluate later),
# THREADS (training threads, 0 = all cores).
set -euo pipefail
DDM=${DDM:-./build/ddm}
OUT=${OUT:-runs/demo_recipe}
CLASSIFIER=${CLASSIFIER:-runs/classifier.safetensors}
ONLY=${ONLY:-}
THREADS=${THREADS:-0}
mkdir -p "$OUT"
# name: flags on top of configs/demo.conf ("old" restores the recipe before 2026-12-02)
declare -A RECIPES=(
    [old]="--steps 1000 --schedule constant --warmup 50 --lr-min 0 --ema 0.995 --precision fp32 --ckpt-every 250"
    [bf16_2000_cos_ema997]="--precision auto --steps 2000 --schedule cosine --warmup 100 --lr-min 1e-5 --ema 0.997"   # = configs/demo.conf now
    [bf16_2400_cos]="--precision auto --steps 2400 --schedule cosine --warmup 100 --lr-min 1e-5 --ema 0.999"
)
NAMES=${ONLY:-old bf16_2400_cos bf16_2000_cos_ema997}
for name in $NAMES; do
    dir="$OUT/$name"
    if [ ! -f "$dir/train.seconds" ]; then
        mkdir -p "$dir"
        t0=$(date +%s.%N)
        "$DDM" train --config configs/demo.conf ${RECIPES[$name]} --threads "$THREADS" --erank-every 0 --out "$dir" > "$dir/train.txt" 2>&1
        echo "$(date +%s.%N) - $t0" | bc > "$dir/train.seconds"
    fi
    [ -f "$dir/eval.json" ] || [ -n "${TRAIN_ONLY:-}" ] && continue
    "$DDM" sample --ckpt "$dir/ckpt.safetensors" --n 1000 --sampler heun --steps 25 --cfg 1 --seed 0 --ncols 40 \
        --scale 1 --out "$dir/samples_cfg1.png" --npy "$dir/samples.npy" > "$dir/sample.txt" 2>&1
    "$DDM" eval --classifier "$CLASSIFIER" --samples "$dir/samples.npy" --n 1000 --seed 0 --json "$dir/eval.json" \
        > "$dir/eval.txt" 2>&1
    "$DDM" sample --ckpt "$dir/ckpt.safetensors" --steps 20 --cfg 3 --n 100 --out "$dir/samples.png" > /dev/null 2>&1
    # the raw (final) weights too: the same protocol without the EMA
    "$DDM" sample --ckpt "$dir/ckpt.safetensors" --raw --n 1000 --sampler heun --steps 25 --cfg 1 --seed 0 --ncols 40 \
        --scale 1 --out "$dir/raw_cfg1.png" --npy "$dir/raw.npy" > "$dir/raw_sample.txt" 2>&1
    "$DDM" eval --classifier "$CLASSIFIER" --samples "$dir/raw.npy" --n 1000 --seed 0 --json "$dir/raw_eval.json" \
        > "$dir/raw_eval.txt" 2>&1
    rm -f "$dir/raw.npy"
    rm -f "$dir/samples.npy"
    echo "$name: $(cat "$dir/train.seconds" | cut -c1-6) s, EMA $(grep '^samples' "$dir/eval.txt"), raw $(grep '^samples' "$dir/raw_eval.txt")"
done
