#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, train a small SiT with Dispersive
# Loss on Fashion-MNIST (configs/demo.conf, ~5 minutes on 2 cores), and write samples.png: a 10x10
# grid, one class per column (T-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag,
# ankle boot), Heun ODE with classifier-free guidance 3, from the final (raw) weights: with the learning rate
# annealed to 1e-5 they measured better than the EMA (FD-CNN 5.5 vs 6.1, docs/demo.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
make -j"$(nproc)"
./build/ddm train --config configs/demo.conf "$@"
./build/ddm sample --ckpt runs/demo/ckpt.safetensors --raw --steps 20 --cfg 3 --n 100 --out samples.png
echo "wrote samples.png (checkpoint and log in runs/demo/)"
