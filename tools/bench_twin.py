#!/usr/bin/env python3
"""Times the PyTorch twin's training step on one configuration, for `ddm bench`.

Same work as ddm's step: SiT linear-interpolant loss + Dispersive Loss (InfoNCE-L2, lambda 0.5,
tau 0.5, block depth/4), backward, clip to norm 1, AdamW, EMA update. Eager PyTorch, CPU, float32.
Prints "twin img/s X peak_mb Y".
"""
import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twin_model import DiT, make_xt_target, diffusion_loss  # noqa: E402


def infonce_l2_pdist(z, tau):
    """InfoNCE-L2 the way the official PyTorch release computes it (pdist over the B(B-1)/2 pairs,
    each pair twice, plus the zero diagonal): the fast form, so the timing is fair to PyTorch. The
    twin's reference version (explicit pairwise differences) is exact at the diagonal but builds a
    B x B x D tensor."""
    z = z.flatten(1)
    d = torch.nn.functional.pdist(z).pow(2) / z.shape[1]
    d = torch.cat((d, d, torch.zeros(z.shape[0])))
    return torch.logsumexp(-d / tau, 0) - 2 * torch.log(torch.tensor(float(z.shape[0])))


def main():
    ap = argparse.ArgumentParser()
    for k in ("depth", "hidden", "heads", "patch", "channels", "size", "classes", "learn-sigma", "batch",
              "steps", "warmup", "threads"):
        ap.add_argument("--" + k, type=int, required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = dict(depth=a.depth, hidden=a.hidden, heads=a.heads, patch=a.patch, in_channels=a.channels,
               input_size=[a.size, a.size], num_classes=a.classes, learn_sigma=bool(a.learn_sigma))
    model = DiT(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
    B = a.batch
    x = torch.rand(B, a.channels, a.size, a.size) * 2 - 1
    noise = torch.randn_like(x)
    t = torch.rand(B)
    y = torch.randint(0, a.classes, (B,)) if a.classes else None
    block = max(a.depth // 4 - 1, 0)

    def step():
        xt, tm, target = make_xt_target("sit_linear", x, noise, t)
        trace = {}
        out = model(xt, tm, y, trace=trace)
        loss = diffusion_loss(out, target) + 0.5 * infonce_l2_pdist(trace[f"block.{block}"], 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.9999)
            torch._foreach_add_(ema, [p.detach() for p in params], alpha=1 - 0.9999)

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"twin img/s {B * a.steps / dt:.3f} peak_mb {peak:.1f}")


if __name__ == "__main__":
    main()
