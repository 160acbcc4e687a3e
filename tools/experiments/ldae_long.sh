#!/bin/bash
# The longer-budget l-DAE runs of docs/ldae.md ("Beyond one epoch"): the class-conditional DiT baseline
# (trajectory row 1) and l-DAE (row 11) at the same 3000-step budget (seeds 0 and 1), and l-DAE for 18000 steps with a
# cosine schedule and flips; the pair at hidden 384 (1000 steps) and l-DAE there for 10000; the pair with the long
# recipe at 6000 steps (seeds 0 and 1), and l-DAE with random resized crops; patch 2 beside patch 4 at 3000 steps;
# three more levers at 3000 steps (whitened tokenizer, weight decay 0.05, depth 12) and the probe's t; every run
# probed at every block (`ddm probe --block all`, one forward pass).
# bf16 matrix multiplies (needs AVX512_BF16). Skips what is done, so an interrupted study resumes; a run
# stopped mid-training continues from its checkpoint (`--resume` keeps its total steps).
#
#   OPENBLAS_CORETYPE=SKYLAKEX bash tools/experiments/ldae_long.sh      # into runs/ldae (needs its pca_d4)
#
# Environment: DDM, OUT (default runs/ldae, shared with ldae.sh for the tokenizer), THREADS (0 = all cores),
# PROBE_TRAIN / PROBE_TEST. The table: /usr/bin/python3 tools/experiments/tables.py ldae_long runs/ldae
set -euo pipefail
DDM=${DDM:-./build/ddm}
OUT=${OUT:-runs/ldae}
THREADS=${THREADS:-0}
PROBE_TRAIN=${PROBE_TRAIN:-20000}
PROBE_TEST=${PROBE_TEST:-10000}
mkdir -p "$OUT"
PCA="$OUT/pca_d4.safetensors"
[ -f "$PCA" ] || "$DDM" pca --patch 4 --dim 4 --out "$PCA" > "$OUT/pca_d4.txt"

# run NAME CONFIG [train flags...]: train (or finish training) NAME, then probe every block.
run() {
    local name=$1 conf=$2; shift 2
    local dir="$OUT/$name"
    local extra=()
    grep -q '^pca *=' "$conf" && extra+=(--pca "$PCA")
    if [ ! -f "$dir/train.done" ]; then
        if [ -f "$dir/ckpt.safetensors" ]; then
            "$DDM" train --resume "$dir/ckpt.safetensors" --out "$dir" --threads "$THREADS" >> "$dir.train.txt" 2>&1
        else
            mkdir -p "$dir"
            "$DDM" train --config "$conf" "${extra[@]}" "$@" --out "$dir" --precision bf16 --threads "$THREADS" \
                > "$dir.train.txt" 2>&1
        fi
        touch "$dir/train.done"
    fi
    [ -f "$dir/probe_all.json" ] && return 0
    "$DDM" probe --ckpt "$dir/ckpt.safetensors" --block all --ema --n-train "$PROBE_TRAIN" --n-test "$PROBE_TEST" \
        --threads "$THREADS" --json "$dir/probe_all.json" > "$dir/probe_all.txt"
}

run long_dit_3000 configs/ldae_traj_01_dit_baseline.conf --steps 3000
run long_ldae_3000 configs/ldae_traj_11_ldae.conf --steps 3000
run long_dit_3000_s1 configs/ldae_traj_01_dit_baseline.conf --steps 3000 --seed 1   # a second seed of the pair
run long_ldae_3000_s1 configs/ldae_traj_11_ldae.conf --steps 3000 --seed 1
# The long recipe: cosine lr after 200 warmup steps, random flips.
COS=(--schedule cosine --warmup 200 --flip --log-every 100)
run long_ldae_cos18k configs/ldae_traj_11_ldae.conf --steps 18000 "${COS[@]}" --ckpt-every 1000 --keep-every 3000
# A wider network (hidden 384, 6 heads: 384-d features, ~3.4x the compute per image): one epoch as the
# trajectory rows, the DiT baseline at the same one epoch, and l-DAE for 10000 steps with the long recipe.
WIDE=(--hidden 384 --heads 6)
run wide_ldae_1000 configs/ldae_traj_11_ldae.conf --steps 1000 "${WIDE[@]}"
run wide_ldae_cos10k configs/ldae_traj_11_ldae.conf --steps 10000 "${COS[@]}" --ckpt-every 500 --keep-every 2500 \
    "${WIDE[@]}"
run wide_dit_1000 configs/ldae_traj_01_dit_baseline.conf --steps 1000 "${WIDE[@]}"
# The DiT baseline with the long recipe (cosine lr, flips), beside l-DAE with the same, at 6000 steps (6.4 epochs).
run mid_dit_cos6k configs/ldae_traj_01_dit_baseline.conf --steps 6000 "${COS[@]}" --ckpt-every 1000
run mid_ldae_cos6k configs/ldae_traj_11_ldae.conf --steps 6000 "${COS[@]}" --ckpt-every 1000
run mid_dit_cos6k_s1 configs/ldae_traj_01_dit_baseline.conf --steps 6000 "${COS[@]}" --ckpt-every 1000 --seed 1
run mid_ldae_cos6k_s1 configs/ldae_traj_11_ldae.conf --steps 6000 "${COS[@]}" --ckpt-every 1000 --seed 1
# The same with random resized crops (area 0.35-1 of the image, aspect 3/4-4/3; SPEC §1.2: +0.5 in the paper).
run mid_ldae_cos6k_crop35 configs/ldae_traj_11_ldae.conf --steps 6000 "${COS[@]}" --ckpt-every 1000 --crop-scale 0.35
# Patch 2 (196 tokens of 2x2 pixels; the tokenizer stays the patch-4 PCA; measured 4.7x the training time) beside
# patch 4, both 3000 steps with the long recipe.
run p4_ldae_cos3k configs/ldae_traj_11_ldae.conf --steps 3000 "${COS[@]}" --ckpt-every 500
run p2_ldae_cos3k configs/ldae_traj_11_ldae.conf --steps 3000 "${COS[@]}" --ckpt-every 500 --patch 2
# Three recipe levers beside p4_ldae_cos3k (same 3000-step recipe, one change each): a whitened tokenizer (every
# kept PCA coordinate at unit variance, so sigma_max = sqrt 2 hides each of them alike; unwhitened, the first
# has std 2.4 and is never hidden), AdamW weight decay 0.05 (MAE's recipe; 0 elsewhere), and depth 12 (DiT-S's
# depth; encoder = blocks 0-5). A later --pca wins over the one run() passes.
PCA_W="$OUT/pca_d4_w.safetensors"
[ -f "$PCA_W" ] || "$DDM" pca --patch 4 --dim 4 --whiten 1 --out "$PCA_W" > "$OUT/pca_d4_w.txt"
run w_ldae_cos3k configs/ldae_traj_11_ldae.conf --steps 3000 "${COS[@]}" --ckpt-every 500 --pca "$PCA_W"
run wd_ldae_cos3k configs/ldae_traj_11_ldae.conf --steps 3000 "${COS[@]}" --ckpt-every 500 --wd 0.05
run d12_ldae_cos3k configs/ldae_traj_11_ldae.conf --steps 3000 "${COS[@]}" --ckpt-every 500 --depth 12
# The probe's input noise level (SPEC §1.2: t = 10 of 1000) on p4_ldae_cos3k: t = 0, 50 and 150 beside it.
for t in 0 50 150; do
    d="$OUT/p4_ldae_cos3k"
    [ -f "$d/probe_all_t$t.json" ] ||
        "$DDM" probe --ckpt "$d/ckpt.safetensors" --block all --ema --t "$t" --n-train "$PROBE_TRAIN" \
            --n-test "$PROBE_TEST" --threads "$THREADS" --json "$d/probe_all_t$t.json" > "$d/probe_all_t$t.txt"
done
# The two long runs (they keep milestones): probed on the whole training split (60,000 images), raw pixels too.
LONG=("$OUT/long_ldae_cos18k" "$OUT/wide_ldae_cos10k")
for d in "${LONG[@]}"; do
    [ -f "$d/probe_all_full.json" ] ||
        "$DDM" probe --ckpt "$d/ckpt.safetensors" --block all --ema --threads "$THREADS" \
            --json "$d/probe_all_full.json" > "$d/probe_all_full.txt"
done
# the milestones kept along the way (learning rate not yet annealed), whichever --keep-every wrote
for d in "${LONG[@]}"; do for kept in "$d"/ckpt_*.safetensors; do
    [ -f "$kept" ] || continue   # no milestones kept
    s=${kept##*/ckpt_}; s=${s%.safetensors}
    cmp -s "$kept" "$d/ckpt.safetensors" && continue   # the final step's copy: probed as the run itself
    [ -f "$d/probe_all_$s.json" ] ||
        "$DDM" probe --ckpt "$kept" --block all --ema --n-train "$PROBE_TRAIN" --n-test "$PROBE_TEST" \
            --threads "$THREADS" --json "$d/probe_all_$s.json" > "$d/probe_all_$s.txt"
done; done
mkdir -p "$OUT/base_pixels_full"
[ -f "$OUT/base_pixels_full/probe.json" ] ||
    "$DDM" probe --baseline pixels --threads "$THREADS" --json "$OUT/base_pixels_full/probe.json" \
        > "$OUT/base_pixels_full/probe.txt"
