#!/usr/bin/python3
"""Independent check of `ddm forward`: rebuild the model in PyTorch from a ddm
checkpoint, run it on the same inputs and compare with ddm's outputs.

    /usr/bin/python3 tools/check_forward.py --ckpt C.safetensors --x x.npy --t t.npy \
        [--y y.npy] --out out.npy [--block K --block-out z.npy] [--ema] \
        [--atol 1e-4 --rtol 1e-3]

Exit status 0 if every compared element satisfies |a-b| <= atol + rtol*|b|
(b = the PyTorch value), 1 if not, 2 on a usage/input error.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st                                    # noqa: E402
from twin_model import DiT                   # noqa: E402

MODEL_KEYS = ("depth", "hidden", "heads", "patch", "in_channels", "input_size",
              "num_classes", "learn_sigma")


def fail(msg):
    print(f"check_forward: {msg}", file=sys.stderr)
    sys.exit(2)


def model_config(meta, path):
    if "config" not in meta:
        fail(f"{path}: no \"config\" in the safetensors metadata")
    cfg = json.loads(meta["config"])
    cfg = cfg.get("model", cfg)             # ddm nests it under "model"
    missing = [k for k in MODEL_KEYS if k not in cfg]
    if missing:
        fail(f"{path}: config.model lacks {missing}")
    return {k: cfg[k] for k in MODEL_KEYS}


def load_model(path, use_ema):
    tensors, meta = st.load(path)
    model = DiT(model_config(meta, path))
    prefix = "ema." if use_ema else ""
    sd = {k[len(prefix):]: torch.from_numpy(v.astype(np.float32))
          for k, v in tensors.items()
          if k.startswith(prefix) and k[len(prefix):] in model.state_dict()}
    if "pos_embed" not in sd:
        # pos_embed is fixed; a checkpoint may leave it out (under ema. especially).
        print("check_forward: note: no pos_embed in checkpoint, using the sin-cos table")
        sd["pos_embed"] = model.pos_embed.detach().clone()
    else:
        dev = float((sd["pos_embed"] - model.pos_embed).abs().max())
        if dev > 1e-5:
            print(f"check_forward: warning: checkpoint pos_embed differs from sin-cos by {dev:.3g}")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        fail(f"{path}: {'ema ' if use_ema else ''}weights do not fit the config: {e}")
    return model.eval()


def load_npy(path, what):
    try:
        return np.load(path)
    except (OSError, ValueError) as e:
        fail(f"{path}: cannot read {what}: {e}")


def compare(name, got, want, atol, rtol):
    """Print the errors; return True if within tolerance."""
    if got.shape != want.shape:
        print(f"{name}: shape {list(got.shape)} from ddm, expected {list(want.shape)}")
        return False
    got, want = got.astype(np.float64), want.astype(np.float64)
    err = np.abs(got - want)
    rel = err / np.maximum(np.abs(want), 1e-12)
    ok = bool(np.all(err <= atol + rtol * np.abs(want))) and np.all(np.isfinite(got))
    print(f"{name}: max abs err {err.max():.3e}  max rel err {rel.max():.3e}  "
          f"(max |ref| {np.abs(want).max():.3e}) {'OK' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--x", required=True, help="[B,C,H,W] input .npy")
    ap.add_argument("--t", required=True, help="[B] time .npy")
    ap.add_argument("--y", help="[B] labels .npy (int or float)")
    ap.add_argument("--out", required=True, help="ddm's [B,Cout,H,W] output .npy")
    ap.add_argument("--block", type=int, help="0-based block whose output to compare")
    ap.add_argument("--block-out", help="ddm's [B,T,H] block output .npy")
    ap.add_argument("--ema", action="store_true", help="use the ema.* weights")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--rtol", type=float, default=1e-3)
    a = ap.parse_args()
    if (a.block is None) != (a.block_out is None):
        fail("--block and --block-out go together")
    torch.set_num_threads(1)

    model = load_model(a.ckpt, a.ema)
    x = torch.from_numpy(load_npy(a.x, "x").astype(np.float32))
    t = torch.from_numpy(load_npy(a.t, "t").astype(np.float32)).reshape(-1)
    y = None
    if hasattr(model, "y_embedder"):
        if a.y is None:
            fail("the model is class-conditional: --y is required")
        y = torch.from_numpy(np.rint(load_npy(a.y, "y")).astype(np.int64)).reshape(-1)
    if a.block is not None and not 0 <= a.block < len(model.blocks):
        fail(f"--block {a.block}: the model has blocks 0..{len(model.blocks) - 1}")

    trace = {}
    with torch.no_grad():
        out = model(x, t, y, trace=trace)
    ok = compare("out", load_npy(a.out, "ddm output"), out.numpy(), a.atol, a.rtol)
    if a.block is not None:
        ok &= compare(f"block.{a.block}", load_npy(a.block_out, "ddm block output"),
                      trace[f"block.{a.block}"].numpy(), a.atol, a.rtol)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
