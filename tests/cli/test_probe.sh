#!/usr/bin/env bash
# ddm probe: linear-probe and k-NN accuracy of a checkpoint's pooled block features and of the
# baselines (pixels, PCA, random network) on small Fashion-MNIST subsets; user errors are one line.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

# in [lo, hi]?
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x + 0 >= lo && x + 0 <= hi) }'; }
lin_of() { sed -nE 's/^linear probe top-1: ([0-9.]+)%.*/\1/p' <<< "$1"; }
knn_of() { sed -nE 's/^k-NN top-1: ([0-9.]+)%.*/\1/p' <<< "$1"; }
SMALL="--n-train 2000 --n-test 500 --epochs 5 --threads 1"

expect_ok "tiny train" $DDM train $TINY --batch 4 --steps 2 --threads 1 --out $TMP/run
CK=$TMP/run/ckpt.safetensors

out=$($DDM probe --ckpt $CK $SMALL --json $TMP/r.json 2>&1); rc=$?
check "probe a checkpoint: $out" test $rc -eq 0
check "features dimension = hidden 32" grep -q "^features dimension 32, 2000 train / 500 test images, 10 classes" <<< "$out"
check "default block = last (1), SiT t = 0.99" grep -q "block 1 of 0..1, t = 0.99" <<< "$out"
lin=$(lin_of "$out"); knn=$(knn_of "$out")
check "linear top-1 in [0, 100] (got $lin)" between "$lin" 0 100
check "k-NN top-1 in [0, 100] (got $knn)" between "$knn" 0 100
check "time printed" grep -qE "^time: [0-9.]+ s$" <<< "$out"
check "JSON written" test -s $TMP/r.json
check "no temp files left" test -z "$(ls $TMP | grep tmp)"
js=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['dim'], r['block'], r['n_train'], r['n_test'], '%.2f' % r['linear_top1'], '%.2f' % r['knn_top1'])" $TMP/r.json 2>&1)
check "JSON holds the results ($js)" test "$js" = "32 1 2000 500 $lin $knn"
out2=$($DDM probe --ckpt $CK $SMALL 2>&1)
check "deterministic given the seed" test "$(lin_of "$out2") $(knn_of "$out2")" = "$lin $knn"
expect_ok "block 0, EMA weights, t given" $DDM probe --ckpt $CK --block 0 --ema --t 0.9 $SMALL

# --block all: every block from one forward pass; each block's numbers equal its own single-block probe
out=$($DDM probe --ckpt $CK --block all $SMALL --json $TMP/all.json 2>&1)
check "--block all: $out" grep -q "blocks 0..1 of 0..1, t = 0.99" <<< "$out"
b0=$($DDM probe --ckpt $CK --block 0 $SMALL 2>&1)
want="$(lin_of "$b0") $(knn_of "$b0") $lin $knn"   # block 1 = the default (last) probed above
got=$(grep -E "^(linear probe|k-NN) top-1" <<< "$out" | sed -nE 's/^[^:]+: ([0-9.]+)%.*/\1/p' | tr '\n' ' ' | sed 's/ $//')
check "--block all = block 0 and block 1 probed one by one (got $got, want $want)" test "$got" = "$want"
js=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); print(' '.join('%d:%.2f/%.2f' % (b['block'], b['linear_top1'], b['knn_top1']) for b in r['blocks']))" $TMP/all.json 2>&1)
check "--block all JSON lists both blocks ($js)" test "$js" = "0:$(lin_of "$b0")/$(knn_of "$b0") 1:$lin/$knn"

# a DDPM checkpoint: default t = 10 of 1000
expect_ok "tiny DDPM train" $DDM train $TINY --objective ddpm --unconditional --batch 4 --steps 2 --threads 1 --out $TMP/ddpm
out=$($DDM probe --ckpt $TMP/ddpm/ckpt.safetensors $SMALL 2>&1)
check "DDPM default t = 10: $out" grep -q "ddpm), block 1 of 0..1, t = 10$" <<< "$out"

# baselines: raw pixels and PCA coefficients are far above chance (10%) on 2000 / 500 images
out=$($DDM probe --baseline pixels $SMALL 2>&1)
lin=$(lin_of "$out"); knn=$(knn_of "$out")
check "pixels: dimension 784" grep -q "^features dimension 784," <<< "$out"
check "pixels: linear top-1 > 60 (got $lin)" between "$lin" 60 100
check "pixels: k-NN top-1 > 60 (got $knn)" between "$knn" 60 100
expect_ok "fit a PCA tokenizer" $DDM pca --patch 4 --dim 8 --patches 5000 --threads 1 --out $TMP/pca.safetensors
out=$($DDM probe --baseline pca --pca $TMP/pca.safetensors $SMALL 2>&1)
lin=$(lin_of "$out"); knn=$(knn_of "$out")
check "pca: dimension 49 x 8" grep -q "^features dimension 392," <<< "$out"
check "pca: linear top-1 > 60 (got $lin)" between "$lin" 60 100
check "pca: k-NN top-1 > 60 (got $knn)" between "$knn" 60 100
out=$($DDM probe --baseline random --ckpt $CK $SMALL 2>&1)
check "random network with the checkpoint's architecture: $out" grep -q "randomly initialised sit_linear network (depth 2, hidden 32" <<< "$out"
out=$($DDM probe --baseline random --depth 1 --hidden 16 --heads 2 --patch 7 $SMALL 2>&1)
lin=$(lin_of "$out")
check "random network of given sizes (got $lin)" between "$lin" 0 100

# a weight-decay search on a held-out part of the training images; the features saved for other probes
out=$($DDM probe --baseline pixels $SMALL --wd 0,0.01 --val-frac 0.2 --json $TMP/wd.json --save-features $TMP/f.safetensors 2>&1)
check "wd search prints its validation accuracies: $out" grep -qE "^weight decay by validation \(last 0.2 of the training images\): 0 [0-9.]+%, 0.01 [0-9.]+%; chose (0|0.01)$" <<< "$out"
chosen=$(sed -nE 's/.*; chose ([0-9.e-]+)$/\1/p' <<< "$out")
plain=$($DDM probe --baseline pixels $SMALL --wd "$chosen" 2>&1)
check "the search's result = a plain probe with the chosen wd ($chosen)" test "$(lin_of "$out")" = "$(lin_of "$plain")"
js=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); print(['%g' % w for w in r['wd_grid']], '%g' % r['val_frac'], len(r['val_top1']), r['wd'] in r['wd_grid'])" $TMP/wd.json 2>&1)
check "JSON records the grid, the fraction, the validation accuracies and the choice ($js)" test "$js" = "['0', '0.01'] 0.2 2 True"
js=$($PY - $TMP/f.safetensors <<'PYEOF' 2>&1
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
h = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
print(h["train_-1"]["shape"], h["test_-1"]["shape"], h["train_labels"]["dtype"], h["test_labels"]["shape"])
PYEOF
)
check "--save-features: features and labels ($js)" test "$js" = "[2000, 784] [500, 784] I32 [500]"
expect_fail "bad wd list" "--wd '0,x': expected a weight decay >= 0" $DDM probe --baseline pixels --wd 0,x
expect_fail "validation part empty" "--val-frac 0.0001 of 2000 training images leaves no validation" $DDM probe --baseline pixels $SMALL --wd 0,1 --val-frac 0.0001

# user errors: one line, exit 1
expect_fail "missing block" "--block 12: the model has blocks 0 to 1" $DDM probe --ckpt $CK --block 12 $SMALL
expect_fail "bad block" "--block 'first': expected a block index, 'encoder', 'last' or 'all'" $DDM probe --ckpt $CK --block first
expect_fail "PCA file as a checkpoint" "is a PCA tokenizer (from ddm pca), not a ddm model checkpoint" $DDM probe --ckpt $TMP/pca.safetensors
printf '\x20\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{"a":"b"}}      ' > $TMP/other.safetensors
expect_fail "other file as a checkpoint" "not a ddm model checkpoint" $DDM probe --ckpt $TMP/other.safetensors
expect_fail "missing checkpoint" "does not exist" $DDM probe --ckpt $TMP/nothing.safetensors
expect_fail "no --ckpt" "ddm probe needs --ckpt" $DDM probe
expect_fail "pca baseline without --pca" "--baseline pca needs --pca FILE" $DDM probe --baseline pca
expect_fail "bad baseline" "--baseline 'foo': expected none, pixels, pca or random" $DDM probe --baseline foo
expect_fail "checkpoint as a tokenizer" "not a ddm PCA tokenizer" $DDM probe --baseline pca --pca $CK
expect_fail "SiT t out of range" "--t 1.5: a SiT model takes t from 0 (noise) to 1 (data)" $DDM probe --ckpt $CK --t 1.5
expect_fail "DDPM t not an integer" "--t 10.5: a DDPM model takes an integer t" $DDM probe --ckpt $TMP/ddpm/ckpt.safetensors --t 10.5
expect_fail "a checkpoint with a pixel baseline" "--baseline pixels uses no network: drop --ckpt" $DDM probe --baseline pixels --ckpt $CK
# a tokenizer that does not fit the images: patch 3 does not divide 28, 3 channels for grey images
$PY - $TMP <<'PYEOF'
import json, struct, sys
def pca(path, patch, channels, d):
    D = patch * patch * channels
    mean = [0.0] * D
    basis = [1.0 if i == j else 0.0 for i in range(D) for j in range(D)]
    eig = [float(D - i) for i in range(D)]
    blobs = [struct.pack("<%df" % D, *mean), struct.pack("<%df" % (D * D), *basis), struct.pack("<%dd" % D, *eig)]
    names = [("pca.mean", "F32", [D]), ("pca.basis", "F32", [D, D]), ("pca.eigenvalues", "F64", [D])]
    h, off = {"__metadata__": {"format": "ddm-pca-1", "patch": str(patch), "channels": str(channels), "d": str(d),
                                "centered": "1", "whitened": "0"}}, 0
    for (n, dt, sh), b in zip(names, blobs):
        h[n] = {"dtype": dt, "shape": sh, "data_offsets": [off, off + len(b)]}
        off += len(b)
    hj = json.dumps(h).encode()
    hj += b" " * (-len(hj) % 8)
    open(path, "wb").write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
pca(sys.argv[1] + "/p3.safetensors", 3, 1, 2)
pca(sys.argv[1] + "/c3.safetensors", 2, 3, 2)
PYEOF
expect_fail "tokenizer patch does not divide the images" "not divisible by the patch size 3" $DDM probe --baseline pca --pca $TMP/p3.safetensors $SMALL
expect_fail "tokenizer channels differ" "fitted on 3-channel images" $DDM probe --baseline pca --pca $TMP/c3.safetensors $SMALL

help=$($DDM probe --help); rc=$?
check "--help exits 0" test $rc -eq 0
check "--help lists the flags" grep -q -- "--knn-k" <<< "$help"
check "ddm --help lists probe" grep -q "probe" <<< "$($DDM --help)"
expect_fail "unknown command lists probe" "pca, probe" $DDM prob
finish
