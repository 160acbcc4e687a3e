#!/usr/bin/env bash
# make install into a temporary prefix, then a small program built against it with pkg-config — shared
# (libddm.so, found through LD_LIBRARY_PATH) and static (libddm.a) — that uses the public API: Dispersive Loss,
# a dataset through ddm_data_*, a TensorBoard event file; the installed tool runs, with AVX code only where it is
# chosen at run time (portable).
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
P=$TMP/prefix
if ! command -v pkg-config > /dev/null; then echo "test_install.sh: SKIPPED: no pkg-config (tools/setup.sh installs it)"; finish; exit; fi
expect_ok "make install PREFIX=$P" make --no-print-directory install PREFIX=$P
for f in bin/ddm lib/libddm.a lib/libddm.so lib/libddm.so.0 include/ddm.h lib/pkgconfig/ddm.pc; do
    check "installed $f" test -e $P/$f; done
check "ddm.pc names the prefix" grep -q "^prefix=$P\$" $P/lib/pkgconfig/ddm.pc
expect_ok "installed ddm runs" $P/bin/ddm data --help
# Portable: no AVX instruction (VEX/EVEX-encoded, mnemonic v...) outside the kernels built per x86-64 level
# (cpu_ops_v3.o, cpu_ops_v4.o: chosen at run time) and the bf16 GEMM's AVX512_BF16 functions (gemm_bf16.o, used only
# where the CPU has it): their functions are read from the installed libddm.a, the instructions from bin/ddm.
if command -v objdump > /dev/null; then
    allowed=$(cd $TMP && ar x $P/lib/libddm.a cpu_ops_v3.o cpu_ops_v4.o gemm_bf16.o &&
              nm --defined-only cpu_ops_v3.o cpu_ops_v4.o gemm_bf16.o | awk 'NF == 3 && $2 ~ /[tT]/ {print $3}' | sort -u)
    vex=$(objdump -d --no-show-raw-insn $P/bin/ddm |
          awk '/^[0-9a-f]+ <.*>:$/ {fn = substr($2, 2, length($2) - 3)} $2 ~ /^v[a-z]/ {print fn}' | sort -u)
    outside=$(comm -23 <(echo "$vex") <(echo "$allowed") | tr '\n' ' ')
    check "bin/ddm has AVX code in the dispatched kernels" test -n "$vex"
    check "bin/ddm has no AVX code elsewhere (found in: $outside)" test -z "$outside"
fi
mkdir -p $TMP/mnist
$PY - $TMP/mnist <<'PYEOF'
import gzip, struct, sys
import numpy as np
d = sys.argv[1]; r = np.random.default_rng(0)
im = r.integers(0, 256, (7, 4, 5), dtype=np.uint8); lb = np.array([0, 1, 2, 0, 1, 2, 3], np.uint8)
open(f"{d}/train-images-idx3-ubyte", "wb").write(struct.pack(">IIII", 0x803, 7, 4, 5) + im.tobytes())
gzip.open(f"{d}/train-labels-idx1-ubyte.gz", "wb").write(struct.pack(">II", 0x801, 7) + lb.tobytes())
PYEOF
cat > $TMP/prog.c <<'CEOF'
#include <ddm.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: prog DATA TBDIR\n"); return 2; }
    float z[4 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1}, dz[12];
    float l = ddm_dispersive_loss(z, 4, 3, "infonce_l2", 0.5f, 1, dz);
    ddm_data *d = ddm_data_open(argv[1], NULL, "train", 0);
    long long n; int c, h, w, k, label;
    ddm_data_info(d, &n, &c, &h, &w, &k);
    float x[20]; char err[256];
    if (ddm_data_read(d, 6, x, &label, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); return 1; }
    char *js = ddm_data_describe(d);
    ddm_tensorboard *t = ddm_tensorboard_open(argv[2]);
    ddm_tensorboard_scalar(t, "loss", 1, l);
    ddm_tensorboard_images(t, "sample", 1, x, 1, 1, h, w, -1, 1);
    ddm_tensorboard_close(t);
    printf("loss %.6f n %lld shape %dx%dx%d classes %d label %d %s\n", l, n, c, h, w, k, label, js);
    free(js);
    ddm_data_close(d);
    return 0;
}
CEOF
export PKG_CONFIG_PATH=$P/lib/pkgconfig
expect_ok "build against the installed libddm.so" bash -c "cc -std=c11 -Wall -Wextra -Werror -o $TMP/prog $TMP/prog.c \$(pkg-config --cflags --libs ddm)"
out=$(LD_LIBRARY_PATH=$P/lib $TMP/prog $TMP/mnist $TMP/tb 2>&1)
check "shared: the program runs" grep -q "n 7 shape 1x4x5 classes 4 label 3 {\"format\":\"idx\"" <<< "$out"
check "it uses the installed library" bash -c "LD_LIBRARY_PATH=$P/lib ldd $TMP/prog | grep -q '$P/lib/libddm.so.0'"
expect_ok "build against libddm.a (pkg-config --static)" bash -c "cc -std=c11 -o $TMP/prog_static $TMP/prog.c \$(pkg-config --cflags ddm) \$(pkg-config --static --libs ddm | sed 's/-lddm/-l:libddm.a/')"
out2=$($TMP/prog_static $TMP/mnist $TMP/tb2 2>&1)
check "static: the same output" test "$out" = "$out2"
check_not "static: no libddm.so needed" bash -c "ldd $TMP/prog_static | grep -q libddm"
check "it wrote a TensorBoard file" bash -c "ls $TMP/tb/events.out.tfevents.* > /dev/null"
finish
