#!/usr/bin/env python3
"""Times the PyTorch twin's training step on one configuration, for `ddm bench`.

Same work as ddm's step: SiT linear-interpolant loss + Dispersive Loss (InfoNCE-L2, lambda 0.5,
tau 0.5, block depth/4), backward, clip to norm 1, AdamW, EMA update. Eager PyTorch, CPU, float32 by
default; with --device cuda on the GPU, where --bf16 runs the model under bf16 autocast (fp32 weights,
optimizer state and EMA, as ddm's bf16), attention goes through scaled_dot_product_attention (flash
kernels: what a PyTorch user gets), AdamW is the fused one, and --compile wraps the model in
torch.compile (the first warm-up steps compile). Prints "twin img/s X peak_mb Y" (peak_mb: the process's
resident memory on the CPU, torch.cuda.max_memory_allocated on the GPU).
"""
import argparse
import contextlib
import math
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin_model  # noqa: E402
from twin_model import DiT, make_xt_target, diffusion_loss  # noqa: E402


def infonce_l2_pdist(z, tau):
    """InfoNCE-L2 the way the official PyTorch release computes it (pdist over the B(B-1)/2 pairs,
    each pair twice, plus the zero diagonal): the fast form, so the timing is fair to PyTorch. The
    twin's reference version (explicit pairwise differences) is exact at the diagonal but builds a
    B x B x D tensor."""
    z = z.flatten(1).float()
    d = torch.nn.functional.pdist(z).pow(2) / z.shape[1]
    d = torch.cat((d, d, torch.zeros(z.shape[0], device=z.device)))
    return torch.logsumexp(-d / tau, 0) - 2 * math.log(z.shape[0])


def sdpa_attention_forward(self, x):
    """twin_model.Attention.forward through scaled_dot_product_attention (same math, fused kernels)."""
    B, T, H = x.shape
    hd = H // self.heads
    qkv = self.qkv(x).reshape(B, T, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
    y = torch.nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    return self.proj(y.transpose(1, 2).reshape(B, T, H))


class WithBlock(torch.nn.Module):
    """The model returning its output and one block's output (a plain pair, so torch.compile sees no
    side effects)."""

    def __init__(self, model, block):
        super().__init__()
        self.model, self.block = model, block

    def forward(self, x, t, y):
        trace = {}
        out = self.model(x, t, y, trace=trace)
        return out, trace[f"block.{self.block}"]


def main():
    ap = argparse.ArgumentParser()
    for k in ("depth", "hidden", "heads", "patch", "channels", "size", "classes", "learn-sigma", "batch",
              "steps", "warmup", "threads"):
        ap.add_argument("--" + k, type=int, required=True)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (cuda)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (cuda)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    gpu = dev.type == "cuda"
    if gpu:
        twin_model.Attention.forward = sdpa_attention_forward
        torch.backends.cuda.matmul.allow_tf32 = True     # ddm's fp32 GEMMs are TF32 too
        torch.backends.cudnn.allow_tf32 = True
    cfg = dict(depth=a.depth, hidden=a.hidden, heads=a.heads, patch=a.patch, in_channels=a.channels,
               input_size=[a.size, a.size], num_classes=a.classes, learn_sigma=bool(a.learn_sigma))
    model = DiT(cfg).to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                            **({"fused": True} if gpu else {}))
    B = a.batch
    x = torch.rand(B, a.channels, a.size, a.size, device=dev) * 2 - 1
    noise = torch.randn_like(x)
    t = torch.rand(B, device=dev)
    y = torch.randint(0, a.classes, (B,), device=dev) if a.classes else None
    block = max(a.depth // 4 - 1, 0)
    net = WithBlock(model, block)
    if a.compile:
        net = torch.compile(net)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if gpu and a.bf16 else contextlib.nullcontext()

    def step():
        xt, tm, target = make_xt_target("sit_linear", x, noise, t)
        with autocast:
            out, z = net(xt, tm, y)
        loss = diffusion_loss(out.float(), target) + 0.5 * infonce_l2_pdist(z, 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.9999)
            torch._foreach_add_(ema, [p.detach() for p in params], alpha=1 - 0.9999)

    sync = torch.cuda.synchronize if gpu else (lambda: None)
    for _ in range(a.warmup):
        step()
    sync()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    if gpu:
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"twin img/s {B * a.steps / dt:.3f} peak_mb {peak:.1f}")


if __name__ == "__main__":
    main()
