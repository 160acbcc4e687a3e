#!/usr/bin/env bash
# The l-DAE deconstruction trajectory (configs/ldae_traj_*.conf, --objective denoise): every config parses
# and trains one step on a tiny model, the checkpoint's config records the denoise settings, the resumed
# run is bit-identical, a denoise checkpoint probes (default t = 10) and refuses to sample; meaningless
# combinations are one-line errors.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh

expect_ok "fit a PCA tokenizer" $DDM pca --patch 4 --dim 4 --patches 3000 --threads 1 --out $TMP/pca.safetensors
SMALL="--depth 1 --hidden 16 --heads 1 --batch 2 --steps 1 --threads 1"
meta() {   # the train config of a checkpoint: objective noise tokenizer target pca_output loss_weight single num_classes
    $PY - "$1" <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
m = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["config"])
t = m["train"]
print(t["objective"], t["noise"], t["tokenizer"], t["target"], t["pca_output"], t["loss_weight"],
      t["single_noise_level"], m["model"]["num_classes"], bool(t["pca"]))
PYEOF
}
n=0
for f in configs/ldae_traj_*.conf; do
    n=$((n + 1))
    name=$(basename $f .conf)
    out=$($DDM train --config $f $SMALL --pca $TMP/pca.safetensors --out $TMP/$name 2>&1); rc=$?
    if grep -q "^pca *=" $f; then
        check "$name trains one step: $out" test $rc -eq 0
    else   # pixel rows: --pca is refused, so train without it
        out=$($DDM train --config $f $SMALL --out $TMP/$name 2>&1); rc=$?
        check "$name trains one step: $out" test $rc -eq 0
    fi
    check "$name: finite loss" grep -qE '"loss":[0-9.e+-]+,' $TMP/$name/log.jsonl
    # the recorded settings = the config's (the ldae shorthand records its fixed values)
    got=$(meta $TMP/$name/ckpt.safetensors)
    obj=$(sed -nE 's/^objective *= *(.*)/\1/p' $f)
    if [ "$obj" = ldae ]; then want="ldae sigma_linear pca image image ldae"
    else
        v() { local x; x=$(sed -nE "s/^$1 *= *(.*)/\1/p" $f); echo "${x:-$2}"; }
        want="denoise $(v noise ddpm_linear) $(v tokenizer pixel) $(v target noise) $(v pca-output image) $(v loss-weight mse)"
    fi
    check "$name records '$want' (got '$got')" grep -qF -- "$want " <<< "$got"
    single=$(sed -nE 's/^single-noise-level *= *(.*)/\1/p' $f)
    check "$name single noise level (got '$got')" grep -qF -- " ${single:--1} " <<< "$got"
    classes=$(grep -q "^unconditional *= *1" $f || [ "$obj" = ldae ] && echo 0 || echo 10)
    check "$name num_classes $classes (got '$got')" grep -qE " $classes (True|False)$" <<< "$got"
done
check "10 trajectory configs (got $n)" test $n -eq 10

# the denoise flags on the command line: resume is bit-identical and keeps the settings
ARGS="--objective denoise --noise gamma2_linear --tokenizer pca --pca $TMP/pca.safetensors --target latent --pca-output latent --unconditional --depth 1 --hidden 16 --heads 1 --batch 2 --lr 1e-3 --seed 5 --log-every 1 --threads 1"
out=$($DDM train $ARGS --steps 4 --out $TMP/a 2>&1)
check "reports the settings: $out" grep -q "denoise: noise gamma2_linear, tokenizer pca, target latent, pca-output latent, loss-weight mse" <<< "$out"
expect_ok "first half" $DDM train $ARGS --steps 2 --out $TMP/b
expect_ok "resumed half" $DDM train --resume $TMP/b/ckpt.safetensors --steps 4 --out $TMP/b --log-every 1 --threads 1
check "resumed checkpoint is bit-identical" cmp -s $TMP/a/ckpt.safetensors $TMP/b/ckpt.safetensors
# single noise level on the command line, recorded
expect_ok "single noise level" $DDM train --objective denoise --single-noise-level 30 $SMALL --out $TMP/s
check "single noise level recorded" grep -qF "denoise ddpm_linear pixel noise image mse 30 " <<< "$(meta $TMP/s/ckpt.safetensors)"
# denoise = ddpm bit for bit (same log)
strip() { grep '"loss"' "$1" | sed 's/,"img_per_s".*//'; }   # the step lines, timings dropped
expect_ok "ddpm" $DDM train --objective ddpm $SMALL --steps 3 --log-every 1 --out $TMP/dd
expect_ok "denoise defaults" $DDM train --objective denoise $SMALL --steps 3 --log-every 1 --out $TMP/dn
check "denoise ddpm_linear pixel noise trains exactly as ddpm" diff <(strip $TMP/dd/log.jsonl) <(strip $TMP/dn/log.jsonl)

# probe (default t = 10 for every schedule) and sample
PR="--n-train 300 --n-test 100 --epochs 1 --threads 1"
out=$($DDM probe --ckpt $TMP/a/ckpt.safetensors $PR 2>&1)
check "probe a denoise checkpoint: $out" grep -q "denoise), block 0 of 0..0, t = 10$" <<< "$out"
out=$($DDM probe --ckpt $TMP/ldae_traj_05_noise_schedule/ckpt.safetensors $PR 2>&1)
check "probe a pixel denoise checkpoint: $out" grep -qE "^linear probe top-1: [0-9.]+%" <<< "$out"
expect_fail "probe t not an integer" "a denoise model takes an integer noise level t from 0 (clean) to 999" $DDM probe --ckpt $TMP/a/ckpt.safetensors --t 10.5 $PR
expect_fail "no sampler" "was trained with the denoise objective" $DDM sample --ckpt $TMP/a/ckpt.safetensors --out $TMP/s.png

# user errors: one line, exit 1
B="$SMALL --out $TMP/bad"
expect_fail "pca tokenizer without --pca" "--tokenizer pca needs --pca FILE" $DDM train --objective denoise --tokenizer pca $B
expect_fail "--pca with the pixel tokenizer" "--pca is only used with --tokenizer pca" $DDM train --objective denoise --pca $TMP/pca.safetensors $B
expect_fail "latent target with pixels" "--target latent needs --tokenizer pca" $DDM train --objective denoise --target latent $B
expect_fail "latent output with pixels" "--pca-output latent needs --tokenizer pca" $DDM train --objective denoise --pca-output latent $B
expect_fail "ldae weighting with pixels" "--loss-weight ldae needs --tokenizer pca" $DDM train --objective denoise --loss-weight ldae $B
expect_fail "image target, latent output" "--target image is the original image in pixels: it needs --pca-output image" $DDM train --objective denoise --tokenizer pca --pca $TMP/pca.safetensors --target image --pca-output latent $B
expect_fail "unknown schedule" "--noise 'cosine': expected ddpm_linear, gamma2_linear or sigma_linear" $DDM train --objective denoise --noise cosine $B
expect_fail "unknown target" "--target 'x0': expected noise, latent or image" $DDM train --objective denoise --target x0 $B
expect_fail "denoise setting with sit" "--noise is only used with --objective denoise (got --objective sit_linear)" $DDM train --noise sigma_linear $B
expect_fail "ldae fixes its settings" "--target noise: --objective ldae fixes it to image" $DDM train --objective ldae --pca $TMP/pca.safetensors --target noise $B
expect_fail "single level not an integer" "--single-noise-level 2.5: a denoise model takes an integer noise level" $DDM train --objective denoise --single-noise-level 2.5 $B
expect_fail "single level out of SiT's range" "--single-noise-level 3: a SiT model takes t from 0 (noise) to 1 (data)" $DDM train --single-noise-level 3 $B
check "no checkpoint from failed runs" test ! -e $TMP/bad/ckpt.safetensors
# SHOW=1 bash tests/cli/test_traj.sh prints the settings each config recorded
[ -n "${SHOW:-}" ] && for d in $TMP/ldae_traj_*; do echo "$(basename $d): $(meta $d/ckpt.safetensors)"; done
finish
