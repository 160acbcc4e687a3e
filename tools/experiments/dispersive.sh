#!/bin/bash
# The Dispersive Loss study of docs/dispersive.md: the short-study SiT (configs/study_short.conf: 6 blocks x 192,
# patch 4, batch 32) trained without and with each Dispersive Loss variant at the paper's defaults
# (lambda 0.5, tau 0.5, block depth/4), several seeds each, at equal compute (same steps); then per run
# 1000 samples (Heun ODE, no guidance) as .npy and a PNG grid, `ddm eval` (Fréchet distance on the
# domain classifier's features = FD-CNN, KID, precision/recall) and `ddm probe` of the regularised block.
# Re-running skips what is done (a run counts as done when its probe.json exists).
#
#   bash tools/experiments/dispersive.sh           # into runs/dispersive
#
# Environment: DDM, OUT, STEPS, THREADS, SEEDS, VARIANTS, N (samples per run), SAMPLE_STEPS, PROBE_TRAIN,
# PROBE_TEST, CURVES (runs "variant-sSEED" that also log FD-CNN every 250 steps for the FD-vs-step plot;
# evaluating leaves the training bit-identical, so these runs stay comparable with the others),
# CLASSIFIER (trained first with the command below when missing).
# The table: /usr/bin/python3 tools/experiments/tables.py dispersive runs/dispersive
set -euo pipefail
DDM=${DDM:-./build/ddm}
OUT=${OUT:-runs/dispersive}
STEPS=${STEPS:-1000}
THREADS=${THREADS:-0}
SEEDS=${SEEDS:-"0 1 2"}
VARIANTS=${VARIANTS:-"none infonce_l2 infonce_cos hinge covariance"}
N=${N:-1000}
SAMPLE_STEPS=${SAMPLE_STEPS:-25}
PROBE_TRAIN=${PROBE_TRAIN:-10000}
PROBE_TEST=${PROBE_TEST:-5000}
CLASSIFIER=${CLASSIFIER:-runs/classifier.safetensors}
CURVES=${CURVES:-"none-s1 infonce_l2-s1 none-s2 infonce_l2-s2"}
mkdir -p "$OUT"

if [ ! -f "$CLASSIFIER" ]; then
    "$DDM" classifier train --epochs 20 --lr 0.08 --threads "$THREADS" --out "$CLASSIFIER"
fi

run() {
    local variant=$1 seed=$2
    local dir="$OUT/$variant-s$seed"
    [ -f "$dir/probe.json" ] && return 0
    if [ ! -f "$dir/train.done" ]; then
        rm -rf "$dir"
        local t0=$SECONDS curve=()
        [[ " $CURVES " == *" $variant-s$seed "* ]] && curve=(--eval-every 250 --eval-n 500 --eval-steps 10 \
            --eval-classifier "$CLASSIFIER")
        "$DDM" train --config configs/study_short.conf --disp "$variant" --seed "$seed" --out "$dir" \
            --steps "$STEPS" --threads "$THREADS" "${curve[@]}" > "$dir.train.txt" 2>&1
        mv "$dir.train.txt" "$dir/train.txt"
        echo $((SECONDS - t0)) > "$dir/train.done"
    fi
    if [ ! -f "$dir/eval.json" ]; then
        "$DDM" sample --ckpt "$dir/ckpt.safetensors" --n "$N" --sampler heun --steps "$SAMPLE_STEPS" \
            --cfg 1 --seed "$seed" --ncols 40 --scale 1 --out "$dir/samples.png" --npy "$dir/samples.npy" \
            --threads "$THREADS" > "$dir/sample.txt" 2>&1
        "$DDM" eval --classifier "$CLASSIFIER" --samples "$dir/samples.npy" --n "$N" --seed "$seed" \
            --threads "$THREADS" --json "$dir/eval.json" > "$dir/eval.txt" 2>&1
    fi
    # The regularised block: depth/4 of 6 blocks = block 1, 0-based index 0.
    "$DDM" probe --ckpt "$dir/ckpt.safetensors" --block 0 --ema --n-train "$PROBE_TRAIN" --n-test "$PROBE_TEST" \
        --threads "$THREADS" --json "$dir/probe.json" > "$dir/probe.txt"
    echo "$variant seed $seed: $(grep '^samples' "$dir/eval.txt")"
}

for seed in $SEEDS; do
    for variant in $VARIANTS; do
        run "$variant" "$seed"
    done
done
