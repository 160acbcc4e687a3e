#!/usr/bin/env bash
# The run configuration's field table (src/config/config.c): --help lists every flag; --resume keeps the run's
# settings (the same value again is fine, another is an error); a checkpoint's stored configuration goes through
# the same checks as the command line (types, ranges, choices, the rules between fields, unknown keys) before
# anything is built from it; a crafted config whose model does not match the file's tensors is refused before
# the model's memory is allocated.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
ARGS="$TINY --batch 4 --log-every 1 --threads 2 --erank-every 0"
expect_ok "a short run" $DDM train $ARGS --steps 2 --disp infonce_l2 --out $TMP/a
CK=$TMP/a/ckpt.safetensors
cp $CK $TMP/first.safetensors

help=$($DDM train --help)
for f in depth hidden heads patch learn-sigma label-dropout objective noise tokenizer target pca-output loss-weight \
         single-noise-level pca encoder-depth disp disp-lambda disp-tau disp-eps disp-blocks steps batch lr beta1 beta2 \
         wd adam-eps clip schedule warmup lr-min ema seed data flip crop-scale precision device threads out log-every \
         ckpt-every keep-every eval-every eval-classifier eval-n eval-steps monitor-blocks erank-every erank-n resume \
         model unconditional; do
    if echo "$help" | grep -q -- "--$f "; then ok; else bad "train --help lacks --$f"; fi
done

expect_ok "resume with the same settings given again" $DDM train $ARGS --steps 3 --disp infonce_l2 --resume $CK --out $TMP/a
expect_fail "resume with another learning rate" "--lr: $CK continues its run" $DDM train --resume $CK --lr 0.5 --steps 4 --out $TMP/a
expect_fail "resume with another objective" "--objective" $DDM train --resume $CK --objective ddpm --out $TMP/a
expect_fail "resume as unconditional" "--unconditional" $DDM train --resume $CK --unconditional --out $TMP/a

# craft KEY=VALUE (a JSON value) into section.key of the checkpoint's config; "-section.key" deletes it
craft() {
    local out=$1; shift
    $PY - "$CK" "$out" "$@" <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
cfg = json.loads(head["__metadata__"]["config"])
for kv in sys.argv[3:]:
    if kv.startswith("-"):
        sec, key = kv[1:].split(".", 1); del cfg[sec][key]; continue
    path, val = kv.split("=", 1)
    sec, key = path.split(".", 1)
    cfg[sec][key] = json.loads(val)
head["__metadata__"]["config"] = json.dumps(cfg, allow_nan=True)
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + raw[8 + n:])
PYEOF
}
bad_config() {   # what, expected text, KEY=VALUE...
    local what=$1 text=$2; shift 2
    craft $TMP/bad.safetensors "$@"
    expect_fail "stored $what (sample)" "$text" $DDM sample --ckpt $TMP/bad.safetensors --n 2 --steps 1 --out $TMP/s.png
    expect_fail "stored $what (resume)" "$text" $DDM train --resume $TMP/bad.safetensors --out $TMP/r
}
bad_config "negative steps" "config train.steps" 'train.steps=-5'
bad_config "zero batch" "--batch 0: out of range" 'train.batch=0'
bad_config "huge steps" "config train.steps" 'train.steps=1e300'
bad_config "non-integer depth" "expected an integer" 'model.depth=2.5'
bad_config "unknown objective" "--objective 'edm': expected sit_linear, sit_gvp, ddpm, ldae or denoise" 'train.objective="edm"'
bad_config "EMA above 1" "--ema 2: out of range" 'train.ema_decay=2'
bad_config "dropout below 0" "--label-dropout -0.5: out of range" 'train.label_dropout=-0.5'
bad_config "crop scale above 1" "--crop-scale 7: out of range" 'train.crop_scale=7'
bad_config "NaN temperature (not JSON)" "\"config\" metadata" 'train.disp_tau=NaN'
bad_config "a string where a number goes" "expected a number" 'train.lr="fast"'
bad_config "heads that do not divide hidden" "not divisible by 3 heads" 'model.heads=3'
bad_config "a Dispersive block past the depth" "--disp-blocks '9'" 'train.disp_blocks="9"'
bad_config "an unknown key" "config train.turbo: unknown setting" 'train.turbo=1'
bad_config "a model 16x wider than its tensors" "pos_embed' has shape [1, 16, 32], expected [1, 16, 512]" 'model.hidden=512' 'model.heads=2'
bad_config "input_size that is not a pair" "input_size" 'model.input_size=[28]'
# every run writes its resolved configuration; --config reads it back to the same run
check "config.conf beside the checkpoint" test -s $TMP/a/config.conf
expect_ok "a run from another's config.conf" $DDM train --config $TMP/a/config.conf --steps 2 --out $TMP/again
check "the same run, bit for bit" cmp -s $TMP/again/ckpt.safetensors $TMP/first.safetensors
# the presets parse and train a step (shrunk to a tiny model on Fashion-MNIST, fp32)
for conf in configs/sit_*_dispersive_*.conf; do
    expect_ok "$conf" $DDM train --config $conf $TINY --learn-sigma 0 --batch 4 --steps 1 --precision fp32 --ckpt-every 1 --keep-every 0 --erank-every 0 --out $TMP/preset
done
craft $TMP/old.safetensors -train.crop_scale -train.precision -model.mlp_ratio
expect_ok "a config without keys added later still loads (defaults)" $DDM sample --ckpt $TMP/old.safetensors --n 2 --steps 1 --out $TMP/s.png
finish
