#!/bin/bash
# The long-budget Dispersive Loss study of docs/dispersive.md (issue 17): the demo SiT (6 blocks x 192, patch 4,
# batch 32, lr 1e-3 constant after 50 warmup steps, clip 1) for 10 epochs of Fashion-MNIST (18,750 steps; 1 epoch =
# 1,875 steps), EMA 0.999, bf16 matrix multiplies, one thread per run; every run logs the mechanism monitor for
# blocks 0 (the paper's depth/4) and 5 (the release's last block) and keeps a checkpoint every epoch.
#   arms (seeds 0 1 2): none | paper (InfoNCE-L2, lambda 0.5, tau 0.5, block depth/4) | release (lambda 0.25, tau 1,
#   last block); at seed 0: hinge, infonce_cos, covariance (the paper's lambda, tau/eps, block); the DDPM/DiT
#   objective without and with the paper's InfoNCE-L2; a lambda x tau sweep at 3 epochs (block depth/4); none and
#   paper at seed 0 continued to 30 epochs (--resume: their 10-epoch checkpoints are those of the 10-epoch runs,
#   the learning rate being constant).
# Per run: FD-CNN / KID / precision / recall of 2,000 EMA samples at epochs 1 and 3 and of 10,000 at epoch 10 (and
# 30), 25-step Heun, no guidance, classes cycled (`ddm sample` + `ddm eval` against as many training images and
# beside as many real test images); a linear / k-NN probe of every block of the final EMA weights.
# Skips what is done; an interrupted run continues from its last checkpoint.
#
#   OPENBLAS_CORETYPE=SKYLAKEX bash tools/experiments/dispersive_long.sh        # into runs/dispersive_long
#
# Two runs at a time on 2 cores (what docs/dispersive.md's first rows did):
#   ONLY=none-s0 bash tools/experiments/dispersive_long.sh & ONLY=paper-s0 bash tools/experiments/dispersive_long.sh
# (train the classifier first, as the two would otherwise both start it). A run named in ONLY also goes on to its
# 30-epoch rows where the list has them.
# Environment: DDM (the binary; copy it aside while the study runs), OUT, THREADS (1), CLASSIFIER (the FD-CNN
# feature extractor; trained here if absent, 3 epochs as docs/demo.md's: 90.4% test accuracy), SAMPLE_PRECISION
# (bf16: about 2% on FD-CNN against fp32, docs/dispersive.md), ONLY (a space-separated list of run names to do).
# Tables: /usr/bin/python3 tools/experiments/tables.py dispersive_long runs/dispersive_long
set -euo pipefail
DDM=${DDM:-./build/ddm}
OUT=${OUT:-runs/dispersive_long}
THREADS=${THREADS:-1}
CLASSIFIER=${CLASSIFIER:-runs/classifier3.safetensors}
SAMPLE_PRECISION=${SAMPLE_PRECISION:-bf16}
ONLY=${ONLY:-}
EPOCH=1875
mkdir -p "$OUT"

COMMON=(--config configs/study_short.conf --ema 0.999 --precision bf16 --log-every 250 --ckpt-every $EPOCH
        --keep-every $EPOCH --erank-every $EPOCH --monitor-blocks 0,5 --threads "$THREADS")
NONE=(--disp none)
PAPER=(--disp infonce_l2 --disp-lambda 0.5 --disp-tau 0.5 --disp-blocks depth/4)
RELEASE=(--disp infonce_l2 --disp-lambda 0.25 --disp-tau 1 --disp-blocks last)

# train NAME EPOCHS [flags...]: NAME trained (or continued) to EPOCHS epochs.
train() {
    local name=$1 epochs=$2; shift 2
    local dir="$OUT/$name" steps=$(( epochs * EPOCH ))
    [ -f "$dir/train_$steps.done" ] && return 0
    mkdir -p "$dir"
    if [ -f "$dir/ckpt.safetensors" ]; then
        "$DDM" train --resume "$dir/ckpt.safetensors" --steps $steps --out "$dir" --log-every 250 \
            --ckpt-every $EPOCH --keep-every $EPOCH --erank-every $EPOCH --monitor-blocks 0,5 --threads "$THREADS" \
            >> "$dir/train.txt" 2>&1
    else
        "$DDM" train "${COMMON[@]}" "$@" --steps $steps --out "$dir" > "$dir/train.txt" 2>&1
    fi
    touch "$dir/train_$steps.done"
}

# evaluate NAME EPOCH N: N samples of the EMA weights at that epoch, FD-CNN etc. into eval_e<EPOCH>.json.
evaluate() {
    local name=$1 epoch=$2 n=$3
    local dir="$OUT/$name" step=$(( epoch * EPOCH ))
    [ -f "$dir/eval_e$epoch.json" ] && return 0
    [ -f "$CLASSIFIER" ] || "$DDM" classifier train --epochs 3 --lr 0.08 --threads "$THREADS" --out "$CLASSIFIER"
    "$DDM" sample --ckpt "$dir/ckpt_$step.safetensors" --n "$n" --sampler heun --steps 25 --cfg 1 --seed 0 \
        --ncols 100 --scale 1 --precision "$SAMPLE_PRECISION" --threads "$THREADS" --out "$dir/samples_e$epoch.png" \
        --npy "$dir/samples_e$epoch.npy" > "$dir/sample_e$epoch.txt" 2>&1
    "$DDM" eval --classifier "$CLASSIFIER" --samples "$dir/samples_e$epoch.npy" --n "$n" --seed 0 \
        --threads "$THREADS" --json "$dir/eval_e$epoch.json" > "$dir/eval_e$epoch.txt" 2>&1
    rm -f "$dir/samples_e$epoch.npy"
}

probe() {
    local name=$1 dir="$OUT/$1"
    [ -f "$dir/probe_all.json" ] && return 0
    "$DDM" probe --ckpt "$dir/ckpt.safetensors" --block all --ema --n-train 10000 --n-test 5000 \
        --threads "$THREADS" --json "$dir/probe_all.json" > "$dir/probe_all.txt"
}

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# run NAME EPOCHS [flags...]: train, then evaluate at 1, 3 and the final epoch, probe.
run() {
    local name=$1 epochs=$2
    wanted "$name" || return 0
    train "$@"
    evaluate "$name" 1 2000
    evaluate "$name" 3 2000
    [ "$epochs" -ge 10 ] && evaluate "$name" 10 10000
    [ "$epochs" -ge 30 ] && evaluate "$name" 30 10000
    [ "$epochs" -ge 10 ] && probe "$name"
    return 0
}

sweep() {   # 3 epochs; lambda 0.5 tau 0.5 is paper-s0's 3-epoch checkpoint
    for lam in 0.05 0.1 0.25 0.5; do
        for tau in 0.5 1 2; do
            [ "$lam-$tau" = "0.5-0.5" ] && continue
            run "sweep_l${lam}_t${tau}" 3 --disp infonce_l2 --disp-lambda $lam --disp-tau $tau --disp-blocks depth/4 --seed 0
        done
    done
}

run none-s0 10 "${NONE[@]}" --seed 0
run paper-s0 10 "${PAPER[@]}" --seed 0
run release-s0 10 "${RELEASE[@]}" --seed 0
sweep
for seed in 1 2; do
    run none-s$seed 10 "${NONE[@]}" --seed $seed
    run paper-s$seed 10 "${PAPER[@]}" --seed $seed
    run release-s$seed 10 "${RELEASE[@]}" --seed $seed
done
run hinge-s0 10 --disp hinge --disp-lambda 0.5 --disp-eps 1 --disp-blocks depth/4 --seed 0
run infonce_cos-s0 10 --disp infonce_cos --disp-lambda 0.5 --disp-tau 0.5 --disp-blocks depth/4 --seed 0
run covariance-s0 10 --disp covariance --disp-lambda 0.5 --disp-blocks depth/4 --seed 0
run ddpm_none-s0 10 --objective ddpm "${NONE[@]}" --seed 0
run ddpm_paper-s0 10 --objective ddpm "${PAPER[@]}" --seed 0
run none-s0 30 "${NONE[@]}" --seed 0
run paper-s0 30 "${PAPER[@]}" --seed 0
