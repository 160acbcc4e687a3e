#!/usr/bin/env bash
# Installs everything ddm needs from Debian's packages (idempotent; needs root or sudo).
set -euo pipefail
PKGS=(build-essential pkg-config libopenblas-openmp-dev liblapacke-dev libcjson-dev libstb-dev zlib1g-dev
      libpng-dev libjpeg-dev dataset-fashion-mnist python3-numpy python3-torch python3-torchvision
      python3-protobuf python3-pil libopenmpi-dev openmpi-bin
      clang libclang-rt-dev libomp-dev llvm)   # clang, libFuzzer, the sanitizers' runtimes and llvm-symbolizer: make fuzz, make asan
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then echo "setup: all dependencies present"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
