#!/usr/bin/env bash
# PyTorch interop (issue 15 item 2), with randomly initialised models of the official architecture at the
# official shapes (32x32x4 latents, learned sigma, 1000 classes; S/2 for speed): DiT's plain state dict and a
# SiT/Dispersive-Loss training checkpoint {"model", "ema", "opt", "args"} go through tools/convert_official.py;
# ddm forward on the result equals the PyTorch model that made the weights (and tools/check_forward.py), ddm
# sample runs on it, and ddm export gives back the same tensors, bit for bit, which load_state_dict(strict)
# takes. XL/2's shapes are inferred from a meta-device model (675,129,632 parameters). Refused: a name that
# disagrees with the shapes, args that disagree, missing or foreign tensors, a pickle that is not data.
cd "$(dirname "$0")/../.." && . tests/cli/lib.sh
$PY - "$TMP" <<'EOF' || exit 1
import argparse, os, sys
import numpy as np, torch
sys.path.insert(0, "tools")
from twin_model import DiT
T = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(2)
cfg = dict(depth=12, hidden=384, heads=6, patch=2, in_channels=4, input_size=[32, 32], num_classes=1000, learn_sigma=True)
m = DiT(cfg).eval()            # torch's default init: no tensor is zero, unlike DiT's adaLN-Zero
raw = {k: v.clone() for k, v in m.state_dict().items()}
torch.save(raw, f"{T}/DiT-S-2-256x256.pt")
x = torch.randn(3, 4, 32, 32)
y = torch.tensor([0, 999, 1000])                     # 1000 = the null class
np.save(f"{T}/x.npy", x.numpy()); np.save(f"{T}/y.npy", y.numpy())
td, ts = torch.tensor([0.0, 499.0, 999.0]), torch.tensor([0.0, 0.5, 1.0])
np.save(f"{T}/td.npy", td.numpy()); np.save(f"{T}/ts.npy", ts.numpy())
tr = {}
with torch.no_grad():
    np.save(f"{T}/want_dit.npy", m(x, td, y, trace=tr).numpy())
np.save(f"{T}/want_dit_b5.npy", tr["block.5"].numpy())
# a SiT / Dispersive-Loss training checkpoint at the official shapes but depth 2 (for speed: its args then
# carry no variant name, which would not match); the EMA differs from the raw weights
m = DiT(dict(cfg, depth=2)).eval()
raw = {k: v.clone() for k, v in m.state_dict().items()}
ema = {k: v + 0.01 * torch.randn_like(v) for k, v in raw.items()}
args = argparse.Namespace(image_size=256, num_classes=1000, path_type="Linear", prediction="velocity",
                          global_seed=3, vae="ema")
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0)
m(x, ts, y).square().mean().backward(); opt.step()          # an optimizer state with moments, as saved
torch.save({"model": {"module." + k: v for k, v in raw.items()}, "ema": ema, "opt": opt.state_dict(), "args": args},
           f"{T}/0000100.pt")
m.load_state_dict(raw)
with torch.no_grad():
    np.save(f"{T}/want_sit_raw.npy", m(x, ts, y).numpy())
    m.load_state_dict(ema)
    np.save(f"{T}/want_sit_ema.npy", m(x, ts, y).numpy())
    torch.save(ema, f"{T}/ema_ref.pt")
# small ones for the refusals
tiny = DiT(dict(cfg, depth=2, hidden=64, heads=4)).state_dict()
torch.save({"model": tiny, "ema": tiny, "args": argparse.Namespace(model="SiT-XL/2", image_size=256, num_classes=1000)},
           f"{T}/misnamed.pt")
torch.save(tiny, f"{T}/noname.pt")
t2 = dict(tiny); del t2["blocks.1.mlp.fc2.bias"]; torch.save(t2, f"{T}/missing.pt")
t3 = dict(tiny); t3["projectors.0.0.weight"] = torch.zeros(8, 64); torch.save(t3, f"{T}/extra.pt")
torch.save({"model": tiny, "args": argparse.Namespace(image_size=512, num_classes=1000)}, f"{T}/args_bad.pt")
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + T + "/pwned",))
torch.save({"model": tiny, "args": Evil()}, f"{T}/evil.pt")
EOF
CO="$PY tools/convert_official.py"
close() { $PY -c "
import numpy as np, sys
ok = True
for got, want in zip(sys.argv[1::2], sys.argv[2::2]):
    a, b = np.load(got), np.load(want)
    err = np.abs(a - b).max() / max(1.0, np.abs(b).max()) if a.shape == b.shape else np.inf
    print(f'{got}: max error {np.abs(a - b).max():.3g} (scale {np.abs(b).max():.3g})')
    ok &= bool(err < 1e-4)
sys.exit(0 if ok else 1)" "$@"; }
same_tensors() { $PY -c "
import sys, torch; sys.path.insert(0, 'tools'); import st
got = st.load(sys.argv[1])[0]; want = torch.load(sys.argv[2])
want = {k[7:] if k.startswith('module.') else k: v for k, v in (want['model'] if 'model' in want else want).items()}
assert set(got) == set(want), (set(got) ^ set(want))
bad = [k for k in want if not (got[k] == want[k].numpy()).all() or got[k].shape != tuple(want[k].shape)]
assert not bad, bad[:3]" "$1" "$2"; }

# --- DiT's released format: a plain state dict (EMA weights), named by its file
out=$($CO --pt $TMP/DiT-S-2-256x256.pt --out $TMP/dit.safetensors 2>&1)
check "DiT converted: shapes inferred (S/2: 32,963,360 parameters)" grep -q "depth 12, hidden 384, heads 6, patch 2, 4x32x32, 1000 classes, learned sigma on, 32,963,360 parameters, objective ddpm; DiT-S/2 from the file name" <<< "$out"
expect_ok "ddm forward" $DDM forward --ckpt $TMP/dit.safetensors --x $TMP/x.npy --t $TMP/td.npy --y $TMP/y.npy --out $TMP/o.npy --block 5 --block-out $TMP/z.npy --ema --threads 2
check "== the PyTorch model that made the weights (output, block 5)" close $TMP/o.npy $TMP/want_dit.npy $TMP/z.npy $TMP/want_dit_b5.npy
expect_ok "check_forward.py agrees" $PY tools/check_forward.py --ckpt $TMP/dit.safetensors --x $TMP/x.npy --t $TMP/td.npy --y $TMP/y.npy --out $TMP/o.npy --block 5 --block-out $TMP/z.npy
expect_ok "ddm sample (DDPM) on it" $DDM sample --ckpt $TMP/dit.safetensors --n 2 --steps 2 --out $TMP/s.png --npy $TMP/s.npy --threads 2
check "samples [2, 4, 32, 32], finite" $PY -c "import numpy as np, sys; a = np.load('$TMP/s.npy'); sys.exit(0 if a.shape == (2, 4, 32, 32) and np.isfinite(a).all() else 1)"
expect_ok "ddm export" $DDM export --ckpt $TMP/dit.safetensors --out $TMP/dit_w.safetensors
check "export == the original state dict, bit for bit, and load_state_dict(strict) takes it" $PY -c "
import json, sys, torch; sys.path.insert(0, 'tools'); import st
from twin_model import DiT
t, meta = st.load('$TMP/dit_w.safetensors'); a = json.loads(meta['model_args'])
want = torch.load('$TMP/DiT-S-2-256x256.pt')
assert set(t) == set(want) and all((t[k] == want[k].numpy()).all() for k in want)
assert meta['format'] == 'pt' and meta['model'] == 'DiT-S/2', meta
m = DiT(dict(depth=a['depth'], hidden=a['hidden_size'], heads=a['num_heads'], patch=a['patch_size'], in_channels=a['in_channels'],
             input_size=[a['input_size']] * 2, num_classes=a['num_classes'], learn_sigma=a['learn_sigma']))
m.load_state_dict({k: torch.from_numpy(v) for k, v in t.items()}, strict=True)"

# --- a SiT / Dispersive-Loss training checkpoint: model (under DDP's module.), ema, opt, args
out=$($CO --pt $TMP/0000100.pt --out $TMP/sit.safetensors --heads 6 --name SiT 2>&1)
check "SiT converted: its objective from args.path_type / prediction" grep -q "depth 2, hidden 384, heads 6, .*objective sit_linear" <<< "$out"
check "step from the file name, objective in the config" $PY -c "
import json, sys; sys.path.insert(0, 'tools'); import st
meta = st.load('$TMP/sit.safetensors')[1]; c = json.loads(meta['config'])
assert meta['step'] == '100' and c['train']['objective'] == 'sit_linear' and meta['format'] == 'ddm-dit-1'
d = json.loads(meta['dataset']); assert d['shape'] == [4, 32, 32] and d['scale'] == [0.18215] * 4, d"
expect_ok "forward raw" $DDM forward --ckpt $TMP/sit.safetensors --x $TMP/x.npy --t $TMP/ts.npy --y $TMP/y.npy --out $TMP/o.npy --threads 2
expect_ok "forward --ema" $DDM forward --ckpt $TMP/sit.safetensors --x $TMP/x.npy --t $TMP/ts.npy --y $TMP/y.npy --out $TMP/oe.npy --ema --threads 2
check "raw = \"model\", EMA = \"ema\"" close $TMP/o.npy $TMP/want_sit_raw.npy $TMP/oe.npy $TMP/want_sit_ema.npy
expect_ok "ddm sample (Heun) on it" $DDM sample --ckpt $TMP/sit.safetensors --n 2 --steps 2 --cfg 1.5 --out $TMP/s2.png --threads 2
expect_ok "export --ema" $DDM export --ckpt $TMP/sit.safetensors --out $TMP/sit_ema.safetensors --ema
expect_ok "export --ema == \"ema\"" same_tensors $TMP/sit_ema.safetensors $TMP/ema_ref.pt
expect_ok "export (raw) == \"model\"" bash -c "$DDM export --ckpt $TMP/sit.safetensors --out $TMP/sit_raw.safetensors 2>/dev/null && $(declare -f same_tensors); PY=$PY same_tensors $TMP/sit_raw.safetensors $TMP/0000100.pt"

# --- XL/2: the shapes alone (a meta-device model) give the official configuration
check "XL/2 inferred, 675,129,632 parameters" $PY -c "
import sys, numpy as np; sys.path.insert(0, 'tools')
import convert_official as co
from twin_model import DiT
m = DiT(dict(depth=28, hidden=1152, heads=16, patch=2, in_channels=4, input_size=[32, 32], num_classes=1000, learn_sigma=True), device='meta')
shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
for name, args in (('DiT-XL-2-256x256.pt', {}), (None, {'model': 'SiT-XL/2', 'image_size': 256, 'num_classes': 1000})):
    cfg, fam, notes = co.infer_config(shapes, name=name, args=args)
    assert cfg == dict(depth=28, hidden=1152, heads=16, patch=2, in_channels=4, input_size=[32, 32], num_classes=1000,
                       learn_sigma=True, mlp_ratio=4), cfg
    assert co.expected_shapes(cfg) == shapes
assert sum(int(np.prod(s)) for s in shapes.values()) == 675129632
for name, args, msg in (('DiT-L/2', {}, 'the name says DiT-L/2 (depth 24, hidden 1024, patch 2)'),
                        ('SiT-XL/2', {'image_size': 512}, 'args.image_size 512 gives 64 x 64 latents'),
                        ('SiT-XL/2', {'num_classes': 100}, 'args.num_classes is 100')):
    try:
        co.infer_config(shapes, name=name, args=args); sys.exit('accepted: ' + msg)
    except co.ConvertError as e:
        assert msg in str(e), str(e)"

# --- refusals: one line, exit 2, nothing written
refuses() { local what=$1 text=$2; shift 2; local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
    if [ $rc -eq 2 ] && [ "$(echo "$err" | grep -c 'convert_official: error:')" -eq 1 ] && echo "$err" | grep -qF -- "$text"; then ok
    else bad "$what: rc=$rc: $err"; fi; }
refuses "name disagrees with the shapes" "the name says SiT-XL/2 (depth 28, hidden 1152, patch 2) but the weights have depth 2, hidden 64, patch 2: a different architecture" $CO --pt $TMP/misnamed.pt --out $TMP/no.safetensors
refuses "args disagree" "args.image_size 512 gives 64 x 64 latents" $CO --pt $TMP/args_bad.pt --out $TMP/no.safetensors --heads 4 --name SiT
refuses "no name" "cannot tell DiT (ddpm) from SiT" $CO --pt $TMP/noname.pt --out $TMP/no.safetensors --heads 4
refuses "heads unknown" "pass --heads N" $CO --pt $TMP/noname.pt --out $TMP/no.safetensors --objective ddpm
refuses "missing tensor" "missing 1 tensor(s) of the architecture: blocks.1.mlp.fc2.bias" $CO --pt $TMP/missing.pt --out $TMP/no.safetensors --heads 4 --objective ddpm
refuses "foreign tensor" "projectors.0.0.weight (--drop-extra drops them" $CO --pt $TMP/extra.pt --out $TMP/no.safetensors --heads 4 --objective ddpm
expect_ok "--drop-extra" $CO --pt $TMP/extra.pt --out $TMP/extra.safetensors --heads 4 --objective ddpm --drop-extra
refuses "a pickle that runs code" "refusing to unpickle" $CO --pt $TMP/evil.pt --out $TMP/no.safetensors
check_not "and it did not run" test -e $TMP/pwned
check_not "nothing written on refusal" test -e $TMP/no.safetensors
expect_fail "export needs --out" "ddm export needs --out" $DDM export --ckpt $TMP/dit.safetensors

# --- a ddm-trained checkpoint exported loads into the official module and computes the same
expect_ok "tiny ddm run" $DDM train --depth 2 --hidden 32 --heads 2 --patch 4 --learn-sigma --batch 4 --steps 3 --lr 3e-2 --ema 0.5 --out $TMP/run --threads 2
expect_ok "export its EMA" $DDM export --ckpt $TMP/run/ckpt.safetensors --out $TMP/run_w.safetensors --ema
$PY -c "import numpy as np; r = np.random.default_rng(1); np.save('$TMP/fx.npy', r.standard_normal((2, 1, 28, 28)).astype(np.float32)); np.save('$TMP/ft.npy', np.array([0.2, 0.9], np.float32)); np.save('$TMP/fy.npy', np.array([3, 10]))"
expect_ok "ddm forward --ema" $DDM forward --ckpt $TMP/run/ckpt.safetensors --x $TMP/fx.npy --t $TMP/ft.npy --y $TMP/fy.npy --out $TMP/fo.npy --ema --threads 2
check "PyTorch with the exported weights computes the same" $PY -c "
import json, sys, numpy as np, torch; sys.path.insert(0, 'tools'); import st
from twin_model import DiT
t, meta = st.load('$TMP/run_w.safetensors'); a = json.loads(meta['model_args'])
m = DiT(dict(depth=a['depth'], hidden=a['hidden_size'], heads=a['num_heads'], patch=a['patch_size'], in_channels=a['in_channels'],
             input_size=[a['input_size']] * 2, num_classes=a['num_classes'], learn_sigma=a['learn_sigma']))
m.load_state_dict({k: torch.from_numpy(v) for k, v in t.items()}, strict=True)
with torch.no_grad():
    o = m(torch.from_numpy(np.load('$TMP/fx.npy')), torch.from_numpy(np.load('$TMP/ft.npy')), torch.from_numpy(np.load('$TMP/fy.npy'))).numpy()
d = np.abs(o - np.load('$TMP/fo.npy')).max(); print('max difference', d); sys.exit(0 if d < 1e-4 else 1)"
finish
