#!/usr/bin/env bash
# ddm pca: fits a patch-wise PCA tokenizer on Fashion-MNIST, prints the explained variance per
# component, writes a loadable file; user errors are one line.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

out=$($DDM pca --patch 4 --dim 16 --patches 20000 --threads 1 --out $TMP/p.safetensors 2>&1); rc=$?
check "ddm pca succeeds: $out" test $rc -eq 0
check "tokenizer written" test -s $TMP/p.safetensors
check "no temp files left" test -z "$(ls $TMP | grep tmp)"
n=$(echo "$out" | grep -cE '^component +[0-9]+: [0-9.]+%  \(cumulative [0-9.]+%\)$')
check "16 components printed (got $n)" test "$n" -eq 16
# the cumulative percentage increases and ends at most 100% (and, at d = D, at 100%)
cum=$(echo "$out" | sed -nE 's/^component +[0-9]+: .*\(cumulative ([0-9.]+)%\)$/\1/p' | tr '\n' ' ')
check "cumulative increases and ends <= 100%: $cum" awk -v s="$cum" 'BEGIN { n = split(s, a, " "); for (i = 2; i <= n; i++) if (a[i] + 0 < a[i-1] + 0) exit 1; exit !(n == 16 && a[n] <= 100 && a[n] >= 99.99) }'
check "cumulative at d printed" grep -q "cumulative at d = 16: 100.00%" <<< "$out"
# first component: Fashion-MNIST 4x4 patches are dominated by the mean brightness direction (~74%)
first=$(echo "$out" | sed -nE 's/^component +1: ([0-9.]+)%.*/\1/p')
check "first component explains 60..90% (got $first)" awk -v x="$first" 'BEGIN { exit !(x > 60 && x < 90) }'

# the file is a loadable tokenizer with the right metadata; same seed, same bytes
$PY - "$TMP/p.safetensors" > $TMP/meta.txt <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
m = h["__metadata__"]
print(m["format"], m["patch"], m["channels"], m["d"], m["centered"], m["whitened"],
      h["pca.basis"]["shape"], h["pca.eigenvalues"]["dtype"])
PYEOF
check "metadata: $(cat $TMP/meta.txt)" grep -qF "ddm-pca-1 4 1 16 1 0 [16, 16] F64" $TMP/meta.txt
expect_ok "refit, same seed" $DDM pca --patch 4 --dim 16 --patches 20000 --threads 1 --out $TMP/p2.safetensors
check "deterministic given the seed" cmp -s $TMP/p.safetensors $TMP/p2.safetensors
expect_ok "d = 4, whitened, not centred" $DDM pca --patch 4 --dim 4 --patches 5000 --center 0 --whiten 1 --out $TMP/p4.safetensors
check "d = 4 file written" test -s $TMP/p4.safetensors

expect_fail "d > D" "--dim 17 is larger than the patch dimension D = 16 (patch 4 x 4 x 1)" $DDM pca --patch 4 --dim 17 --patches 1000 --out $TMP/bad.safetensors
check "no file from a failed run" test ! -e $TMP/bad.safetensors
expect_fail "patch does not divide" "not divisible by the patch size 5" $DDM pca --patch 5 --dim 4 --out $TMP/bad.safetensors
expect_fail "d > patches" "larger than the number of sampled patches" $DDM pca --patch 4 --dim 8 --patches 4 --out $TMP/bad.safetensors
expect_fail "bad --center" "--center 2: out of range" $DDM pca --center 2
expect_fail "missing dataset" "does not exist" $DDM pca --data $TMP/nowhere --out $TMP/bad.safetensors
help=$($DDM pca --help); rc=$?
check "--help exits 0" test $rc -eq 0
check "--help lists the flags" grep -q -- "--patches" <<< "$help"
check "ddm --help lists pca" grep -q "pca" <<< "$($DDM --help)"
finish
