#!/usr/bin/python3
"""PyTorch twin: writes the reference values ddm's C tests compare against.

    /usr/bin/python3 tools/twin.py --out DIR     # DIR/<case>.safetensors, dispersive, schedule
    /usr/bin/python3 tools/twin.py --selftest    # gradcheck + parameter counts

(/usr/bin/python3 is Debian's, which has python3-torch; the pyenv python3 has not.)
Everything is deterministic: fixed seeds, one thread, float32 model maths.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st                                    # noqa: E402
from twin_model import (DISP, DiT, ddpm_schedule, denoise_make, diffusion_loss,  # noqa: E402
                        dispersive_loss, ldae_loss, ldae_make_xt, make_xt_target, pca_patches,
                        sincos_2d, timestep_freq)

ADAMW = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
         "weight_decay": 0.01, "steps": 3, "clip": 1.0}
BASE = {"depth": 2, "hidden": 32, "heads": 4, "patch": 2, "in_channels": 1,
        "input_size": [8, 8], "num_classes": 3, "learn_sigma": False,
        "objective": "sit_linear", "disp_variant": "infonce_l2", "disp_lambda": 0.5,
        "disp_tau": 0.5, "disp_eps": 1.0, "disp_blocks": [0], "batch": 4,
        "adamw": ADAMW, "ema_decay": 0.9}


def case(**kw):
    cfg = json.loads(json.dumps(BASE))          # deep copy
    adamw = kw.pop("adamw", {})
    cfg.update(kw)
    cfg["adamw"].update(adamw)
    return cfg


DENOISE_KEYS = ("noise", "tokenizer", "target", "pca_output", "loss_weight")


def denoise(settings, single_noise_level=-1, **kw):
    """A denoise case: settings = the values of DENOISE_KEYS; unconditional unless num_classes is given."""
    kw.setdefault("num_classes", 0)
    return case(objective="denoise", single_noise_level=single_noise_level,
                **dict(zip(DENOISE_KEYS, settings)), **kw)


CASES = {
    "sit_cond": case(),
    "sit_uncond_sigma": case(depth=3, hidden=24, heads=2, in_channels=2, input_size=[4, 6],
                             num_classes=0, learn_sigma=True, objective="sit_gvp",
                             disp_variant="infonce_cos", disp_lambda=0.25, disp_tau=1.0,
                             disp_blocks=[0, 2], batch=3),
    # clip 0.05 here so gradient clipping is certainly active in one case.
    "dit_ddpm": case(heads=2, patch=4, in_channels=3, num_classes=5, learn_sigma=True,
                     objective="ddpm", disp_variant="hinge", disp_lambda=0.3, disp_eps=1.0,
                     disp_blocks=[1], adamw={"clip": 0.05}),
    # The covariance loss (scaled by 1/D) is ~2e-5 here; lambda 1000 makes its
    # gradient ~7% of the total so a bug in that path cannot hide under rtol.
    "sit_cov": case(hidden=16, heads=2, input_size=[4, 4], num_classes=2,
                    disp_variant="covariance", disp_lambda=1000.0, disp_blocks=[1], batch=3),
    # clip 10 here so one case runs with clipping inactive.
    "sit_nodisp": case(disp_variant="none", disp_lambda=0.0, adamw={"clip": 10.0}),
    # l-DAE: unconditional, noise in the latent of a random orthonormal PCA tokenizer whose patch (2,
    # D = 4, d = 2) differs from the model's (4); with Dispersive Loss on the encoder block.
    "ldae": case(patch=4, heads=2, num_classes=0, objective="ldae",
                 pca={"patch": 2, "channels": 1, "d": 2, "centered": 1, "whitened": 0}),
    # The denoise objective (the l-DAE deconstruction trajectory, configs/ldae_traj_*.conf), one case per
    # trajectory row below; together they take every value of noise, tokenizer, target, pca_output and
    # loss_weight, and the single noise level.
    # Row 1, DiT baseline: class-conditional, noise added to the pixels, predict eps, pixel MSE.
    "denoise_pixel": denoise(["ddpm_linear", "pixel", "noise", "image", "mse"], in_channels=3, num_classes=4,
                             disp_variant="hinge", disp_lambda=0.3),
    # Row 6, PCA tokenizer: gamma^2 linear, noise in the PCA latent (tokenizer patch 2 x 2 x 2, D = 8,
    # d = 3, model patch 4), predict eps, loss on the output's latent; learned sigma.
    "denoise_pca_noise": denoise(["gamma2_linear", "pca", "noise", "latent", "mse"], patch=4, heads=2,
                                 in_channels=2, learn_sigma=True,
                                 pca={"patch": 2, "channels": 2, "d": 3, "centered": 1, "whitened": 0}),
    # Row 7, predict the clean latent, loss in the latent; with a whitened, uncentred tokenizer (no config
    # row uses one; whitening scales x_t, the target and the latent loss). Tokenizer patch 4 (D = 16, d = 4).
    "denoise_pca_latent": denoise(["gamma2_linear", "pca", "latent", "latent", "mse"], input_size=[8, 4],
                                  pca={"patch": 4, "channels": 1, "d": 4, "centered": 0, "whitened": 1}),
    # Row 10, image output via inverse PCA: sigma linear, predict the clean latent as an image, pixel
    # MSE against the PCA reconstruction; tokenizer patch = model patch = 4, d = 4 (as the configs).
    "denoise_pca_image": denoise(["sigma_linear", "pca", "latent", "image", "mse"], patch=4, heads=2,
                                 disp_variant="infonce_cos", disp_lambda=0.25, disp_tau=1.0,
                                 pca={"patch": 4, "channels": 1, "d": 4, "centered": 1, "whitened": 0}),
    # The single-noise-level ablation of row 11 (l-DAE: predict the original image, l-DAE weighting),
    # every sample at t = 500; no Dispersive Loss.
    "denoise_ldae_single": denoise(["sigma_linear", "pca", "image", "image", "ldae"], single_noise_level=500,
                                   patch=4, heads=2, disp_variant="none", disp_lambda=0.0,
                                   pca={"patch": 2, "channels": 1, "d": 2, "centered": 1, "whitened": 0}),
}


# ----------------------------------------------------------------------------
# Model cases

def randomize_(model, gen):
    """Overwrite every trainable parameter (the zero-initialised adaLN/final ones
    too) so that every gradient path carries signal; pos_embed stays sin-cos."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if name.endswith("embedding_table.weight") or p.dim() == 1:
                std = 0.05
            else:                               # Linear [out,in] / conv [out,C,p,p]
                std = 0.3 / math.sqrt(p[0].numel())
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def make_inputs(cfg, gen):
    B, C, (Hh, Ww) = cfg["batch"], cfg["in_channels"], cfg["input_size"]
    x = torch.rand(B, C, Hh, Ww, generator=gen) * 2 - 1
    noise = torch.randn(B, C, Hh, Ww, generator=gen)
    if cfg["objective"] in ("ddpm", "ldae", "denoise"):     # integer levels 0..999
        t = torch.randint(0, 1000, (B,), generator=gen).float()
        t[0], t[1] = 999.0, 0.0                  # both ends of the schedule
        if cfg.get("single_noise_level", -1) >= 0:
            t[:] = cfg["single_noise_level"]
    else:
        t = torch.rand(B, generator=gen) * 0.98 + 0.01
    y = None
    if cfg["num_classes"] > 0:
        y = torch.randint(0, cfg["num_classes"], (B,), generator=gen)
        y[-1] = cfg["num_classes"]               # one null label
    return x, noise, t, y


def make_pca(cfg, gen):
    """A random tokenizer for the ldae and denoise cases: orthonormal basis (QR of a Gaussian, float32
    values), a random mean, descending eigenvalues."""
    pc = cfg["pca"]
    D = pc["patch"] ** 2 * pc["channels"]
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=gen, dtype=torch.float64))
    pca = dict(pc)
    pca["basis"] = q.t().numpy().astype(np.float32)
    pca["mean"] = (torch.randn(D, generator=gen) * 0.2).numpy().astype(np.float32)
    pca["eigenvalues"] = np.linspace(1.0, 0.1, D)
    return pca


def make_objective(cfg, x, noise, t, pca=None):
    """(x_t, the model's time input, the target image, loss(out))."""
    if cfg["objective"] == "denoise":
        xt, target, loss = denoise_make(cfg, x, noise, t, pca)
        return xt, t, target, loss
    xt, tm, target = make_xt_target(cfg["objective"], x, noise, t, pca)
    if cfg["objective"] == "ldae":
        return xt, tm, target, lambda out: ldae_loss(out, target, t, pca)
    return xt, tm, target, lambda out: diffusion_loss(out, target)


def total_loss(model, cfg, xt, t, y, loss_fn, trace):
    out = model(xt, t, y, trace=trace)
    diff = loss_fn(out)
    zs = [trace[f"block.{k}"] for k in cfg["disp_blocks"]]
    disp = dispersive_loss(cfg["disp_variant"], zs, cfg["disp_tau"], cfg["disp_eps"])
    return out, diff, disp, diff + cfg["disp_lambda"] * disp


def f32(t):
    return t.detach().cpu().numpy().astype(np.float32)


def forward_backward_record(model, cfg, x, noise, t, y, rec, pca=None):
    """One forward/backward at the initial weights; records activations and grads."""
    xt, tm, target, loss_fn = make_objective(cfg, x, noise, t, pca)
    xt = xt.detach().requires_grad_(True)
    trace = {}
    out, diff, disp, loss = total_loss(model, cfg, xt, tm, y, loss_fn, trace)
    # d disp / d x_t alone (no lambda): checks the dispersive backward path through
    # the network at full scale, however small lambda * disp is next to diff.
    if cfg["disp_variant"] != "none":
        rec["grad.disp.in.xt"] = f32(torch.autograd.grad(disp, xt, retain_graph=True)[0])
    model.zero_grad()
    loss.backward()
    rec["out.xt"], rec["out.target"], rec["out.model"] = f32(xt), f32(target), f32(out)
    for k, v in trace.items():
        rec[f"out.{k}"] = f32(v)
    rec["loss.diff"], rec["loss.disp"] = f32(diff).reshape(1), f32(disp).reshape(1)
    rec["loss.total"] = f32(loss).reshape(1)
    for name, p in model.named_parameters():
        if p.requires_grad:
            rec[f"grad.{name}"] = f32(p.grad)
    rec["grad.in.xt"] = f32(xt.grad)
    return xt.detach(), tm, loss_fn


def train_record(model, cfg, xt, tm, y, loss_fn, rec):
    """`steps` AdamW steps on the same batch, with clipping and an EMA."""
    a = cfg["adamw"]
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    opt = torch.optim.AdamW(params, lr=a["lr"], betas=(a["beta1"], a["beta2"]),
                            eps=a["eps"], weight_decay=a["weight_decay"])
    ema = {n: p.detach().clone() for n, p in named}
    losses, norms = [], []
    for _ in range(a["steps"]):
        opt.zero_grad()
        _, _, _, loss = total_loss(model, cfg, xt, tm, y, loss_fn, {})
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, a["clip"])))
        losses.append(float(loss))
        opt.step()
        with torch.no_grad():
            for n, p in named:
                ema[n].mul_(cfg["ema_decay"]).add_(p, alpha=1 - cfg["ema_decay"])
    for n, p in named:
        rec[f"adamw.{n}"], rec[f"ema.{n}"] = f32(p), f32(ema[n])
    rec["adamw.loss"] = np.array(losses, np.float32)
    rec["adamw.gradnorm"] = np.array(norms, np.float32)
    return norms


def write_model_case(name, cfg, out_dir, seed):
    gen = torch.Generator().manual_seed(seed)
    model = DiT(cfg)
    randomize_(model, gen)
    x, noise, t, y = make_inputs(cfg, gen)
    rec = {k: f32(v) for k, v in model.state_dict().items()}   # the weights used
    rec["in.x"], rec["in.noise"], rec["in.t"] = f32(x), f32(noise), f32(t)
    if y is not None:
        rec["in.y"] = y.numpy().astype(np.int64)
    meta = {"config": json.dumps(cfg)}
    pca = None
    if "pca" in cfg:                             # the tokenizer as an l-DAE checkpoint embeds it
        pca = make_pca(cfg, gen)
        rec["pca.mean"], rec["pca.basis"] = pca["mean"], pca["basis"]
        rec["pca.eigenvalues"] = pca["eigenvalues"]
        for k in ("patch", "channels", "d", "centered", "whitened"):
            meta[f"pca.{k}"] = str(pca[k])
    xt, tm, loss_fn = forward_backward_record(model, cfg, x, noise, t, y, rec, pca)
    norms = train_record(model, cfg, xt, tm, y, loss_fn, rec)
    st.save(os.path.join(out_dir, f"{name}.safetensors"), rec, meta)
    clipped = any(n > cfg["adamw"]["clip"] for n in norms)
    print(f"{name:18s} diff {rec['loss.diff'][0]:.5f} disp {rec['loss.disp'][0]:+.5f} "
          f"total {rec['loss.total'][0]:.5f} gradnorm {norms[0]:.4f} "
          f"clip {cfg['adamw']['clip']} ({'active' if clipped else 'inactive'}) "
          f"tensors {len(rec)}")


# ----------------------------------------------------------------------------
# Dispersive-only and schedule references (float64)

DISP_CASES = [  # B, D, tau, eps, scale
    (2, 5, 0.5, 1.0, 1.0),
    (3, 64, 1.0, 1.0, 1.0),
    (8, 64, 0.5, 2.0, 1.0),
    (8, 5, 0.25, 0.5, 1.0),
    (8, 64, 0.5, 1.0, 30.0),                    # huge distances: needs a stable LSE
    (3, 5, 2.0, 1.0, 30.0),
]


def write_dispersive(out_dir):
    gen = torch.Generator().manual_seed(1234)
    rec, meta = {}, []
    for i, (B, D, tau, eps, scale) in enumerate(DISP_CASES):
        z = torch.randn(B, D, generator=gen, dtype=torch.float64) * scale
        rec[f"z.{i}"] = z.numpy()
        for v, fn in DISP.items():
            zz = z.clone().requires_grad_(True)
            loss = fn(zz, tau=tau, eps=eps)
            loss.backward()
            rec[f"loss.{v}.{i}"] = loss.detach().numpy().reshape(1)
            rec[f"grad.{v}.{i}"] = zz.grad.numpy()
        meta.append({"i": i, "B": B, "D": D, "tau": tau, "eps": eps})
    st.save(os.path.join(out_dir, "dispersive.safetensors"), rec, {"cases": json.dumps(meta)})
    print(f"dispersive         {len(DISP_CASES)} cases x {len(DISP)} variants")


POS_GRIDS = [(2, 3, 8), (7, 7, 384), (4, 4, 16), (2, 4, 24)]   # gh, gw, D


def write_schedule(out_dir):
    betas, ab = ddpm_schedule()
    t = torch.tensor([0.0, 1.0, 0.5, 250.0, 999.0], dtype=torch.float64)
    rec = {"ddpm.betas": betas, "ddpm.alphas_cumprod": ab,
           "temb.t": t.numpy(), "temb.freq": timestep_freq(t).numpy()}
    for gh, gw, d in POS_GRIDS:
        rec[f"pos_embed.{gh}x{gw}.{d}"] = sincos_2d(d, gh, gw)
    st.save(os.path.join(out_dir, "schedule.safetensors"), rec,
            {"pos_grids": json.dumps([{"gh": a, "gw": b, "D": c} for a, b, c in POS_GRIDS])})
    print("schedule           ddpm, temb, pos_embed")


# ----------------------------------------------------------------------------
# Self-test

def selftest():
    ok = True
    gen = torch.Generator().manual_seed(7)
    for v, fn in DISP.items():
        for B, D, tau, eps in [(2, 5, 0.5, 1.0), (4, 6, 1.0, 2.0)]:
            z = torch.randn(B, D, generator=gen, dtype=torch.float64, requires_grad=True)
            good = torch.autograd.gradcheck(lambda zz: fn(zz, tau=tau, eps=eps), (z,))
            print(f"gradcheck {v:12s} B={B} D={D}: {'ok' if good else 'FAIL'}")
            ok &= good
    # Stability: with huge distances InfoNCE-L2 must reach exactly -log B.
    z = torch.randn(8, 64, generator=gen, dtype=torch.float64) * 30
    lv = float(DISP["infonce_l2"](z, tau=0.5))
    good = abs(lv + math.log(8)) < 1e-12
    print(f"infonce_l2 far apart = {lv:.15f} (-log 8 = {-math.log(8):.15f}): "
          f"{'ok' if good else 'FAIL'}")
    ok &= good
    ok &= check_param_counts()
    ok &= check_denoise()
    print("selftest", "PASSED" if ok else "FAILED")
    return ok


def check_denoise():
    """The denoise twin against the other twins and its own definitions: its shorthand rows equal the
    ddpm and ldae objectives; the latent-output loss equals sum (V (out - target) / s)^2 / (T d) (the
    residual in the latent, docs/conventions.md); a full-rank tokenizer (d = D) at t = 0 gives x_t = x."""
    ok = True
    gen = torch.Generator().manual_seed(11)
    B, C, H, W = 4, 2, 4, 8
    x = torch.rand(B, C, H, W, generator=gen) * 2 - 1
    noise = torch.randn(B, C, H, W, generator=gen)
    out = torch.randn(B, C, H, W, generator=gen)
    t = torch.tensor([999.0, 0.0, 17.0, 500.0])

    def cfg(*v):
        return dict(zip(DENOISE_KEYS, v))

    def pca(d, centered, whitened):
        return make_pca({"pca": {"patch": 2, "channels": C, "d": d, "centered": centered,
                                 "whitened": whitened}}, gen)

    def same(name, a, b, tol=1e-6):
        good = float((a - b).abs().max()) <= tol * (1 + float(b.abs().max()))
        print(f"denoise {name:48s}: {'ok' if good else 'FAIL'}")
        return good

    xt, tg, loss = denoise_make(cfg("ddpm_linear", "pixel", "noise", "image", "mse"), x, noise, t)
    xr, _, tr = make_xt_target("ddpm", x, noise, t)
    ok &= same("ddpm_linear pixel noise = ddpm (x_t)", xt, xr) & same("= ddpm (target)", tg, tr)
    ok &= same("= ddpm (loss)", loss(out), diffusion_loss(out, tr))
    p = pca(3, 1, 0)
    xt, tg, loss = denoise_make(cfg("sigma_linear", "pca", "image", "image", "ldae"), x, noise, t, p)
    ok &= same("sigma_linear pca image image ldae = ldae (x_t)", xt, ldae_make_xt(x, noise, t, p))
    ok &= same("= ldae (loss)", loss(out), ldae_loss(out, x, t, p))
    for kind in ("noise", "latent"):
        for centered, whitened in ((1, 0), (0, 1), (1, 1)):
            p = pca(3, centered, whitened)
            _, tg, loss = denoise_make(cfg("gamma2_linear", "pca", kind, "latent", "mse"), x, noise, t, p)
            V = torch.as_tensor(p["basis"][:3], dtype=torch.float64)
            sc = torch.as_tensor(p["eigenvalues"][:3]).sqrt() if whitened else torch.ones(3).double()
            r = pca_patches((out - tg).double(), 2) @ V.t() / sc
            ok &= same(f"latent output, {kind} target, c{centered} w{whitened}", loss(out).double(),
                       (r ** 2).sum((1, 2)).mean() / (r.shape[1] * 3), 1e-5)
    p = pca(C * 4, 1, 0)
    for noise_kind in ("gamma2_linear", "sigma_linear"):     # (ddpm_linear's t = 0 has sigma 0.01)
        xt, tg, _ = denoise_make(cfg(noise_kind, "pca", "latent", "image", "mse"), x, noise,
                                 torch.zeros(B), p)
        ok &= same(f"{noise_kind} t = 0, d = D: x_t = x", xt, x) & same("  target latent = x", tg, x)
    return ok


# (depth, hidden, heads), published count at 32x32x4 latents, patch 2, learned sigma,
# 1000 classes. S/B/L are given to 0.01M, XL exactly.
VARIANTS = {"S/2": ((12, 384, 6), 32.96e6, 0.005e6), "B/2": ((12, 768, 12), 130.51e6, 0.005e6),
            "L/2": ((24, 1024, 16), 458.10e6, 0.005e6), "XL/2": ((28, 1152, 16), 675129632, 0)}


def check_param_counts():
    ok = True
    for name, ((depth, hidden, heads), want, tol) in VARIANTS.items():
        cfg = {"depth": depth, "hidden": hidden, "heads": heads, "patch": 2, "in_channels": 4,
               "input_size": [32, 32], "num_classes": 1000, "learn_sigma": True}
        model = DiT(cfg, device="meta")         # shapes only: no memory, no init time
        n_all = sum(p.numel() for p in model.parameters())
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        good = abs(n_all - want) <= tol
        print(f"DiT-{name:4s}: {n_all:,} incl. pos_embed ({n_train:,} trainable); "
              f"SPEC {want:,.0f}: {'ok' if good else 'FAIL'}")
        ok &= good
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="directory for the reference .safetensors files")
    ap.add_argument("--selftest", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.selftest:
        sys.exit(0 if selftest() else 1)
    if not args.out:
        ap.error("--out DIR or --selftest is required")
    os.makedirs(args.out, exist_ok=True)
    for i, (name, cfg) in enumerate(CASES.items()):
        write_model_case(name, cfg, args.out, seed=100 + i)
    write_dispersive(args.out)
    write_schedule(args.out)


if __name__ == "__main__":
    main()
