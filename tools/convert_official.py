#!/usr/bin/python3
"""Converts the official DiT / SiT / Dispersive-Loss PyTorch checkpoints to ddm checkpoints (safetensors).

    /usr/bin/python3 tools/convert_official.py --pt DiT-XL-2-256x256.pt --out dit_xl2.safetensors
    /usr/bin/python3 tools/convert_official.py --pt results/000-SiT-XL-2/checkpoints/0400000.pt --out sit.safetensors

Reads (SPEC §4):
  - DiT's released files (DiT-XL-2-256x256.pt, ...): a plain state dict of the EMA weights;
  - the training checkpoints of DiT, SiT and the Dispersive Loss release: {"model", "ema", "opt", "args"}
    (args: an argparse.Namespace with model = "SiT-XL/2", image_size, num_classes, path_type, prediction, ...).
Writes the weights under their state-dict names (float32), the EMA under "ema." (a plain state dict is EMA
weights: it goes under both names, so `ddm sample` and `ddm forward` work with and without --ema/--raw), and
the metadata ddm reads: format "ddm-dit-1", config {"model": {...}, "train": {"objective", ...}}, step,
plus "dataset" (the latents the official models train on) and "converted_from". The optimizer state is not
converted (ddm's AdamW moments are not PyTorch's param-group layout): ddm can sample, probe and evaluate a
converted checkpoint, not resume its training.

Everything is inferred from the tensors' shapes: depth (the blocks), hidden size and patch (x_embedder),
input channels, input size (pos_embed's tokens), learned sigma (final_layer's output channels = 2 x input),
classes (label-table rows - 1: the last row is the null class), MLP ratio. Attention heads are not visible
in any shape: they come from the variant's name (S 6, B 12, L 16, XL 16) or --heads. The name comes from
--name, else args.model, else the file name (DiT-XL-2-256x256.pt). A checkpoint whose shapes disagree with its
name, its args, or the set of tensors the architecture has is refused with one line saying what differs.

Loading is restricted: a training checkpoint pickles an argparse.Namespace, which torch.load's weights_only
mode (torch 1.13) refuses, so the unpickler here admits only tensors, their storages, containers and
argparse.Namespace — never arbitrary code.

Exit status 0, or 2 with one line "convert_official: error: ..." on any problem.
"""
import argparse
import collections
import json
import math
import os
import pickle
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

# depth, hidden, heads (SPEC §2)
VARIANTS = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
VAE_FACTOR = 8          # SD-VAE: 256 x 256 images -> 32 x 32 latents
SD_VAE_SCALE = 0.18215


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# loading

class _SafeUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("collections", "OrderedDict"), ("argparse", "Namespace"), ("builtins", "set"), ("builtins", "frozenset"),
        ("builtins", "slice"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "Size"), ("torch", "device"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        if module == "torch" and name in ("float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8"):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} (not a tensor, container or Namespace)")


class _SafePickle:
    Unpickler = _SafeUnpickler
    __name__ = "convert_official_safe_pickle"

    @staticmethod
    def load(f, **kw):
        return _SafeUnpickler(f, **kw).load()


def load_checkpoint(path):
    """torch.load without running the file's code: weights_only first (a plain state dict passes); a training
    checkpoint's argparse.Namespace then needs the restricted unpickler above. torch < 2.4 has no
    add_safe_globals and ignores torch.load's pickle_module unless weights_only, so its zip reader is driven
    directly with ours."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a file that is not a checkpoint
        raise ConvertError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})")
    try:
        if hasattr(torch.serialization, "add_safe_globals"):
            torch.serialization.add_safe_globals([argparse.Namespace])
            return torch.load(path, map_location="cpu", weights_only=True)
        with open(path, "rb") as f:
            if not torch.serialization._is_zipfile(f):
                raise ConvertError(f"{path}: a pre-1.6 (non-zip) torch file with objects beyond tensors: re-save it "
                                   f"with a current torch")
            with torch.serialization._open_zipfile_reader(f) as z:
                return torch.serialization._load(z, "cpu", _SafePickle)
    except pickle.UnpicklingError as e:
        raise ConvertError(f"{path}: {e}")


def clean_state_dict(sd, path, what):
    if not isinstance(sd, dict) or not sd:
        raise ConvertError(f"{path}: {what} is not a state dict")
    out = collections.OrderedDict()
    for k, v in sd.items():
        if not torch.is_tensor(v):
            raise ConvertError(f"{path}: {what}[{k!r}] is a {type(v).__name__}, not a tensor")
        for prefix in ("module.", "_orig_mod."):   # DDP and torch.compile wrappers
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def split_checkpoint(obj, path):
    """(raw state dict or None, ema state dict or None, args dict, kind)."""
    if isinstance(obj, dict) and ("model" in obj or "ema" in obj) and not torch.is_tensor(next(iter(obj.values()))):
        args = obj.get("args")
        args = vars(args) if isinstance(args, argparse.Namespace) else (args if isinstance(args, dict) else {})
        raw = clean_state_dict(obj["model"], path, '"model"') if "model" in obj else None
        ema = clean_state_dict(obj["ema"], path, '"ema"') if "ema" in obj else None
        return raw, ema, args, "training checkpoint"
    return None, clean_state_dict(obj, path, "the file"), {}, "state dict (EMA weights)"


# ---------------------------------------------------------------------------------------------
# the architecture from the shapes

def parse_name(name):
    """"SiT-XL/2", "DiT-XL-2", "DiT-XL-2-256x256" -> (family, variant, patch) or None."""
    m = re.search(r"(DiT|SiT)[-_](XL|L|B|S)[-/_](\d+)", name or "")
    return (m.group(1), m.group(2), int(m.group(3))) if m else None


def expected_shapes(cfg):
    H, p, C, r = cfg["hidden"], cfg["patch"], cfg["in_channels"], cfg["mlp_ratio"]
    T = (cfg["input_size"][0] // p) * (cfg["input_size"][1] // p)
    cout = 2 * C if cfg["learn_sigma"] else C
    s = collections.OrderedDict()
    s["pos_embed"] = (1, T, H)
    s["x_embedder.proj.weight"] = (H, C, p, p)
    s["x_embedder.proj.bias"] = (H,)
    s["t_embedder.mlp.0.weight"] = (H, 256)
    s["t_embedder.mlp.0.bias"] = (H,)
    s["t_embedder.mlp.2.weight"] = (H, H)
    s["t_embedder.mlp.2.bias"] = (H,)
    if cfg["num_classes"] > 0:
        s["y_embedder.embedding_table.weight"] = (cfg["num_classes"] + 1, H)
    for b in range(cfg["depth"]):
        pre = f"blocks.{b}."
        s[pre + "attn.qkv.weight"] = (3 * H, H)
        s[pre + "attn.qkv.bias"] = (3 * H,)
        s[pre + "attn.proj.weight"] = (H, H)
        s[pre + "attn.proj.bias"] = (H,)
        s[pre + "mlp.fc1.weight"] = (r * H, H)
        s[pre + "mlp.fc1.bias"] = (r * H,)
        s[pre + "mlp.fc2.weight"] = (H, r * H)
        s[pre + "mlp.fc2.bias"] = (H,)
        s[pre + "adaLN_modulation.1.weight"] = (6 * H, H)
        s[pre + "adaLN_modulation.1.bias"] = (6 * H,)
    s["final_layer.adaLN_modulation.1.weight"] = (2 * H, H)
    s["final_layer.adaLN_modulation.1.bias"] = (2 * H,)
    s["final_layer.linear.weight"] = (p * p * cout, H)
    s["final_layer.linear.bias"] = (p * p * cout,)
    return s


def infer_config(shapes, name=None, args=None, heads=None, where="checkpoint", name_source=None):
    """shapes: {tensor name: shape tuple}; name: --name or the file name (args.model is used when None).
    Returns (model config dict, family or None, notes)."""
    args = args or {}
    need = ["x_embedder.proj.weight", "pos_embed", "final_layer.linear.weight", "t_embedder.mlp.0.weight"]
    missing = [k for k in need if k not in shapes]
    if missing:
        raise ConvertError(f"{where}: not a DiT/SiT state dict (no {', '.join(missing)})")
    H, C, p, p2 = shapes["x_embedder.proj.weight"]
    if p != p2:
        raise ConvertError(f"{where}: x_embedder.proj.weight {shapes['x_embedder.proj.weight']}: non-square patch")
    depth = len({int(m.group(1)) for k in shapes for m in [re.match(r"blocks\.(\d+)\.", k)] if m})
    T = shapes["pos_embed"][1]
    side = int(round(math.sqrt(T)))
    if side * side != T:
        raise ConvertError(f"{where}: pos_embed has {T} tokens, not a square grid")
    out = shapes["final_layer.linear.weight"][0]
    if out % (p * p):
        raise ConvertError(f"{where}: final_layer.linear.weight {shapes['final_layer.linear.weight']}: "
                           f"not a multiple of patch^2 = {p * p}")
    cout = out // (p * p)
    if cout not in (C, 2 * C):
        raise ConvertError(f"{where}: final_layer outputs {cout} channels per pixel for {C} input channels "
                           f"(expected {C}, or {2 * C} with learned sigma)")
    rows = shapes.get("y_embedder.embedding_table.weight", (0,))[0]
    notes = []
    if rows and args.get("num_classes") == rows:
        raise ConvertError(f"{where}: the label table has {rows} rows for num_classes {rows}: no null class "
                           f"(trained without label dropout), which ddm's models always have")
    num_classes = rows - 1 if rows else 0
    fc1 = shapes.get("blocks.0.mlp.fc1.weight", (4 * H,))[0]
    if fc1 % H:
        raise ConvertError(f"{where}: blocks.0.mlp.fc1.weight {shapes['blocks.0.mlp.fc1.weight']}: MLP width not a "
                           f"multiple of the hidden size {H}")
    cfg = {"depth": depth, "hidden": H, "heads": 0, "patch": p, "in_channels": C,
           "input_size": [side * p, side * p], "num_classes": num_classes, "learn_sigma": cout == 2 * C,
           "mlp_ratio": fc1 // H}

    source = name_source or ("args.model" if not name and args.get("model") else "the name")
    name = name or args.get("model")
    parsed = parse_name(name)
    fam_only = re.search(r"(DiT|SiT)", name or "")   # "SiT" alone: the family (objective), not the variant
    family = parsed[0] if parsed else fam_only.group(1) if fam_only else None
    if parsed:
        fam, var, pn = parsed
        d, h, nh = VARIANTS[var]
        if (d, h, pn) != (depth, H, p):
            guess = [f"{fam}-{v}/{p}" for v, (dd, hh, _) in VARIANTS.items() if (dd, hh) == (depth, H)]
            raise ConvertError(f"{where}: the name says {fam}-{var}/{pn} (depth {d}, hidden {h}, patch {pn}) but the "
                               f"weights have depth {depth}, hidden {H}, patch {p}"
                               f"{' (' + guess[0] + ')' if guess else ''}: a different architecture")
        cfg["heads"] = nh
        notes.append(f"{fam}-{var}/{pn} from {source}")
    if heads:
        if parsed and heads != cfg["heads"]:
            raise ConvertError(f"{where}: --heads {heads}, but {name} has {cfg['heads']} heads")
        cfg["heads"] = heads
    if not cfg["heads"]:
        std = [v for v, (dd, hh, _) in VARIANTS.items() if (dd, hh) == (depth, H)]
        if not std:
            raise ConvertError(f"{where}: depth {depth} x hidden {H} is no named variant: pass --heads N (attention heads "
                               f"are not visible in the shapes)")
        cfg["heads"] = VARIANTS[std[0]][2]
        notes.append(f"heads {cfg['heads']} from the variant with depth {depth} and hidden {H} ({std[0]})")
    if H % cfg["heads"]:
        raise ConvertError(f"{where}: hidden {H} is not divisible by {cfg['heads']} heads")

    if "num_classes" in args and args["num_classes"] != num_classes:
        raise ConvertError(f"{where}: args.num_classes is {args['num_classes']} but the label table has {rows} rows "
                           f"({num_classes} classes + the null class)")
    if "image_size" in args and args["image_size"] // VAE_FACTOR != side * p:
        raise ConvertError(f"{where}: args.image_size {args['image_size']} gives {args['image_size'] // VAE_FACTOR} x "
                           f"{args['image_size'] // VAE_FACTOR} latents, but pos_embed holds {side} x {side} patches of "
                           f"{p} ({side * p} x {side * p})")
    if "learn_sigma" in args and bool(args["learn_sigma"]) != cfg["learn_sigma"]:
        raise ConvertError(f"{where}: args.learn_sigma is {args['learn_sigma']} but final_layer has {cout} output "
                           f"channels for {C} inputs")
    return cfg, family, notes


def check_tensors(sd, cfg, where, drop_extra):
    want = expected_shapes(cfg)
    have = {k: tuple(v.shape) for k, v in sd.items()}
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    if missing:
        raise ConvertError(f"{where}: missing {len(missing)} tensor(s) of the architecture: {', '.join(missing[:4])}"
                           f"{' ...' if len(missing) > 4 else ''}")
    if extra and not drop_extra:
        raise ConvertError(f"{where}: {len(extra)} tensor(s) that are not part of DiT/SiT: {', '.join(extra[:4])}"
                           f"{' ...' if len(extra) > 4 else ''} (--drop-extra drops them, e.g. REPA's projectors)")
    bad = [(k, have[k], want[k]) for k in want if have[k] != want[k]]
    if bad:
        k, h, w = bad[0]
        raise ConvertError(f"{where}: {k} has shape {list(h)}, expected {list(w)} for the inferred architecture "
                           f"({len(bad)} tensor(s) differ)")
    return extra


def objective_of(family, args, override):
    if override:
        return override
    if family == "DiT":
        return "ddpm"
    if family == "SiT":
        path = str(args.get("path_type", "Linear")).lower()
        pred = str(args.get("prediction", "velocity")).lower()
        if pred != "velocity":
            raise ConvertError(f"args.prediction '{pred}': ddm's SiT objectives predict the velocity; pass --objective "
                               f"to convert anyway")
        if path == "linear":
            return "sit_linear"
        if path == "gvp":
            return "sit_gvp"
        raise ConvertError(f"args.path_type '{args.get('path_type')}': ddm has the Linear and GVP interpolants")
    raise ConvertError("cannot tell DiT (ddpm) from SiT (sit_linear): no name in --name, args.model or the file "
                       "name; pass --name or --objective")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pt", required=True, help="the official checkpoint (.pt)")
    ap.add_argument("--out", required=True, help="ddm checkpoint to write (.safetensors)")
    ap.add_argument("--name", help="the variant, e.g. SiT-XL/2 (default: args.model, else the file name); DiT or SiT "
                    "alone names the family (objective) of a variant outside the table, with --heads")
    ap.add_argument("--heads", type=int, help="attention heads, for a variant not in the table")
    ap.add_argument("--objective", choices=["ddpm", "sit_linear", "sit_gvp"], help="override the objective")
    ap.add_argument("--drop-extra", action="store_true", help="drop tensors outside the DiT/SiT architecture")
    a = ap.parse_args()
    try:
        obj = load_checkpoint(a.pt)
        raw, ema, args, kind = split_checkpoint(obj, a.pt)
        first = ema if ema is not None else raw
        name, source = ((a.name, "--name") if a.name else (args["model"], "args.model") if args.get("model")
                        else (os.path.basename(a.pt), "the file name"))
        cfg, family, notes = infer_config({k: tuple(v.shape) for k, v in first.items()}, name=name, args=args,
                                          heads=a.heads, where=a.pt, name_source=source)
        objective = objective_of(family, args, a.objective)
        for what, sd in (('"model"', raw), ('"ema"', ema)):
            if sd is not None:
                dropped = check_tensors(sd, cfg, f"{a.pt} {what if kind != 'state dict (EMA weights)' else ''}".strip(),
                                        a.drop_extra)
                for k in dropped:
                    del sd[k]
        if raw is None:
            raw = ema
        if ema is None:
            notes.append('no "ema" in the checkpoint: ema.* = the raw weights')
            ema = raw
    except ConvertError as e:
        print(f"convert_official: error: {e}", file=sys.stderr)
        sys.exit(2)

    tensors = {}
    for prefix, sd in (("", raw), ("ema.", ema)):
        for k in expected_shapes(cfg):
            tensors[prefix + k] = sd[k].detach().to(torch.float32).contiguous().numpy()
    m = re.search(r"(\d+)\.pt$", os.path.basename(a.pt))
    step = int(m.group(1)) if m and kind == "training checkpoint" else 0
    latent = cfg["in_channels"] == 4
    train = {"objective": objective, "label_dropout": float(args.get("class_dropout_prob", 0.1)),
             "data": "", "seed": str(args.get("global_seed", 0))}
    dataset = {"format": "latents", "path": "", "split": "train", "n": 0,
               "shape": [cfg["in_channels"]] + cfg["input_size"], "num_classes": cfg["num_classes"],
               "values": "latents: (v - shift) * scale per channel",
               "scale": [SD_VAE_SCALE if latent else 1.0] * cfg["in_channels"], "shift": [0.0] * cfg["in_channels"],
               "detail": (f"the official training data: ImageNet {args.get('image_size', cfg['input_size'][0] * VAE_FACTOR)}px "
                          f"through SD-VAE, latents multiplied by {SD_VAE_SCALE}" if latent else "unknown")}
    meta = {"format": "ddm-dit-1", "config": json.dumps({"model": cfg, "train": train}), "step": str(step),
            "seed": train["seed"], "dataset": json.dumps(dataset),
            "converted_from": json.dumps({"path": os.path.abspath(a.pt), "kind": kind, "name": name,
                                          "objective": objective, "notes": notes})}
    tmp = a.out + ".tmp"
    st.save(tmp, tensors, meta)
    os.replace(tmp, a.out)
    nparams = sum(int(np.prod(s)) for s in expected_shapes(cfg).values())
    print(f"convert_official: {a.pt} ({kind}) -> {a.out}: {family or 'model'} depth {cfg['depth']}, hidden "
          f"{cfg['hidden']}, heads {cfg['heads']}, patch {cfg['patch']}, {cfg['in_channels']}x{cfg['input_size'][0]}x"
          f"{cfg['input_size'][1]}, {cfg['num_classes']} classes, learned sigma {'on' if cfg['learn_sigma'] else 'off'}, "
          f"{nparams:,} parameters, objective {objective}; {'; '.join(notes)}")


if __name__ == "__main__":
    main()
