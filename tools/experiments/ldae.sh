#!/bin/bash
# The l-DAE study of docs/ldae.md, start to finish: the deconstruction trajectory (one training run per
# row of configs/ldae_traj_*.conf), the PCA latent-dimension sweep, and the probe baselines, each
# followed by `ddm probe` on the encoder block. Re-running skips what is already done (a run counts as
# done when its probe.json exists), so an interrupted study resumes where it stopped.
#
#   bash tools/experiments/ldae.sh            # everything, into runs/ldae
#   STEPS=2000 OUT=runs/ldae_long bash tools/experiments/ldae.sh
#
# Environment: DDM (binary), OUT, STEPS (training steps per row), THREADS (0 = all cores),
# PROBE_TRAIN / PROBE_TEST (images per probe split), ROWS (which rows, default all), SWEEP (PCA d values).
# The table: /usr/bin/python3 tools/experiments/tables.py ldae runs/ldae
set -euo pipefail
DDM=${DDM:-./build/ddm}
OUT=${OUT:-runs/ldae}
STEPS=${STEPS:-1000}
THREADS=${THREADS:-0}
PROBE_TRAIN=${PROBE_TRAIN:-20000}
PROBE_TEST=${PROBE_TEST:-10000}
ROWS=${ROWS:-"11_ldae 01_dit_baseline 02_no_class_conditioning 05_noise_schedule 06_pca_tokenizer 07_predict_clean_data 08_no_input_scaling 10_output_inverse_pca ablation_single_noise_level"}
SWEEP=${SWEEP:-"2 8 16"}
PROBE=(--block encoder --ema --n-train "$PROBE_TRAIN" --n-test "$PROBE_TEST" --threads "$THREADS")
mkdir -p "$OUT"

pca_file() { echo "$OUT/pca_d$1.safetensors"; }
fit_pca() {
    [ -f "$(pca_file "$1")" ] || "$DDM" pca --patch 4 --dim "$1" --out "$(pca_file "$1")" > "$OUT/pca_d$1.txt"
}

# train_and_probe NAME CONFIG [extra train flags...]: one row, timed; skipped when already probed.
train_and_probe() {
    local name=$1 conf=$2; shift 2
    local dir="$OUT/$name"
    [ -f "$dir/probe.json" ] && return 0
    local extra=()
    grep -q '^pca *=' "$conf" && extra+=(--pca "$(pca_file 4)")
    if [ ! -f "$dir/train.done" ]; then
        rm -rf "$dir"
        local t0=$SECONDS
        "$DDM" train --config "$conf" "${extra[@]}" "$@" --out "$dir" --steps "$STEPS" \
            --ckpt-every 500 --threads "$THREADS" > "$dir.train.txt" 2>&1
        mv "$dir.train.txt" "$dir/train.txt"
        echo $((SECONDS - t0)) > "$dir/train.done"
    fi
    "$DDM" probe --ckpt "$dir/ckpt.safetensors" "${PROBE[@]}" --json "$dir/probe.json" > "$dir/probe.txt"
    echo "$name: $(grep -E 'linear probe top-1|k-NN top-1' "$dir/probe.txt" | cut -c1-40 | tr '\n' ' ')"
}

# baseline NAME [probe flags...]: a probe without training.
baseline() {
    local name=$1; shift
    mkdir -p "$OUT/$name"
    [ -f "$OUT/$name/probe.json" ] && return 0
    "$DDM" probe "$@" --n-train "$PROBE_TRAIN" --n-test "$PROBE_TEST" --threads "$THREADS" \
        --json "$OUT/$name/probe.json" > "$OUT/$name/probe.txt"
    echo "$name: $(grep -E 'linear probe top-1|k-NN top-1' "$OUT/$name/probe.txt" | cut -c1-40 | tr '\n' ' ')"
}

fit_pca 4
for row in $ROWS; do
    train_and_probe "traj_$row" "configs/ldae_traj_$row.conf"
done
baseline base_pixels --baseline pixels
baseline base_pca_d4 --baseline pca --pca "$(pca_file 4)"
baseline base_random --baseline random --block encoder --ckpt "$OUT/traj_11_ldae/ckpt.safetensors"
for d in $SWEEP; do
    fit_pca "$d"
    train_and_probe "sweep_d$d" configs/ldae_traj_11_ldae.conf --pca "$(pca_file "$d")"
done
