#!/usr/bin/env bash
# Prepares .gpu/ for a GPU machine that has the NVIDIA driver, CUDA 13's cuBLAS and PyTorch but not ddm's build
# dependencies (OpenBLAS, LAPACKE, cJSON, stb) nor Fashion-MNIST: run it on a build machine (no GPU needed), then
# run tests/gpu/run.sh on the GPU machine with .gpu carried beside the source tree. It holds
#   .gpu/bin/     ddm and the GPU test binaries, built by `make cuda` for any x86-64-v3 CPU (not -march=native),
#                 and ddm-mpi (`make cuda MPI=1`: NCCL) where this machine has mpicc,
#                 from a copy of the working tree (tracked and untracked files), so build/ here is left alone
#   .gpu/lib.tar.xz  the shared libraries they need beyond glibc, libstdc++, zlib and cuBLAS
#   .gpu/data/    the first 6000 training and 1000 test images of Fashion-MNIST (IDX, gzip)
# About 15 MB. Usage: bash tests/gpu/bundle.sh   (DATA=<Fashion-MNIST dir> to use another copy)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
SRC=$(mktemp -d /tmp/ddm-gpu-build.XXXXXX)
trap 'rm -rf "$SRC"' EXIT
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$SRC"
# portable: the GPU machine's processor is not this one (CFLAGS from the environment keeps the Makefile's own flags)
(cd "$SRC" && CFLAGS="-O3 -march=x86-64-v3 -fno-math-errno" make -j"$(nproc)" cuda > "$SRC/build.log" 2>&1) \
    || { tail -30 "$SRC/build.log"; echo "bundle: the CUDA build failed" >&2; exit 1; }
# and the MPI + CUDA build (NCCL; tests/gpu/test_nccl.sh), where this machine has Open MPI
if command -v mpicc > /dev/null; then
    (cd "$SRC" && CFLAGS="-O3 -march=x86-64-v3 -fno-math-errno" make -j"$(nproc)" cuda MPI=1 >> "$SRC/build.log" 2>&1) \
        || { tail -30 "$SRC/build.log"; echo "bundle: the MPI + CUDA build failed" >&2; exit 1; }
fi
rm -rf .gpu
mkdir -p .gpu/bin/tests/gpu .gpu/data .gpu/lib
cp "$SRC/build/ddm" .gpu/bin/
[ -x "$SRC/build-mpi/ddm" ] && cp "$SRC/build-mpi/ddm" .gpu/bin/ddm-mpi
cp "$SRC"/build/tests/gpu/test_* .gpu/bin/tests/gpu/
rm -f .gpu/bin/tests/gpu/*.d
# every library the binaries load, except the system's own (glibc, the C++ runtime, zlib: newer there and shared
# with Python) and CUDA's (the GPU machine's, matching its driver)
for b in .gpu/bin/ddm* .gpu/bin/tests/gpu/*; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libgcc_s|libstdc\+\+|libz|libcublas[^/]*|libcudart[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" .gpu/lib/; done
tar -C .gpu/lib -cJf .gpu/lib.tar.xz .
rm -rf .gpu/lib
python3 - "$DATA" .gpu/data <<'EOF'
import gzip, os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
def read(name):
    for p in (f"{src}/{name}.gz", f"{src}/{name}"):
        if os.path.exists(p):
            return (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
    sys.exit(f"bundle: no {name} in {src}")
for split, n in (("train", 6000), ("t10k", 1000)):
    img, lab = read(f"{split}-images-idx3-ubyte"), read(f"{split}-labels-idx1-ubyte")
    magic, _, rows, cols = struct.unpack(">IIII", img[:16])
    with gzip.open(f"{dst}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", magic, n, rows, cols) + img[16:16 + n * rows * cols])
    with gzip.open(f"{dst}/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", struct.unpack(">I", lab[:4])[0], n) + lab[8:8 + n])
EOF
du -sh .gpu
echo "bundle: ready; on the GPU machine run: bash tests/gpu/run.sh OUTDIR   (carrying .gpu)"
