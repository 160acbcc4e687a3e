"""PyTorch twin of ddm's DiT/SiT backbone, objectives and Dispersive Loss.

Written from SPEC.md section 2 (not copied from DiT); module and parameter
names follow DiT's state dict so checkpoints load with strict=True.
Only what the reference values need: no dropout, no sampling.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------
# Fixed (non-learned) embeddings, in float64 numpy so they can be written as
# exact references; the model casts them to float32 like DiT does.

def sincos_1d(dim, pos):
    """MAE 1-D encoding of `pos` (any shape) into `dim` channels: sin first, then cos."""
    assert dim % 2 == 0
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    args = np.outer(np.asarray(pos, dtype=np.float64).reshape(-1), omega)
    return np.concatenate([np.sin(args), np.cos(args)], axis=1)


def sincos_2d(dim, gh, gw):
    """[gh*gw, dim] position table, tokens row-major; first dim/2 channels encode
    the column (w) index, the last dim/2 the row (h) index (MAE's convention)."""
    assert dim % 4 == 0
    hh, ww = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    return np.concatenate([sincos_1d(dim // 2, ww), sincos_1d(dim // 2, hh)], axis=1)


def timestep_freq(t, dim=256, max_period=10000.0):
    """DiT's frequency embedding: cos half first, then sin. Works in t's dtype."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=t.dtype, device=t.device) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


# ----------------------------------------------------------------------------
# Modules

class PatchEmbed(nn.Module):
    def __init__(self, patch, cin, hidden, device=None):
        super().__init__()
        self.proj = nn.Conv2d(cin, hidden, patch, stride=patch, device=device)

    def forward(self, x):                       # [B,C,Hh,Ww] -> [B,T,H]
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden, freq_dim=256, device=None):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden, device=device), nn.SiLU(),
                                 nn.Linear(hidden, hidden, device=device))

    def forward(self, t):                       # [B] -> [B,H]
        return self.mlp(timestep_freq(t, self.freq_dim))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, hidden, device=None):
        super().__init__()
        # +1 row: the null class used for classifier-free guidance.
        self.embedding_table = nn.Embedding(num_classes + 1, hidden, device=device)

    def forward(self, y):                       # [B] long -> [B,H]
        return self.embedding_table(y)


class Attention(nn.Module):
    def __init__(self, hidden, heads, device=None):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden, device=device)
        self.proj = nn.Linear(hidden, hidden, device=device)

    def forward(self, x):                       # [B,T,H] -> [B,T,H]
        B, T, H = x.shape
        hd = H // self.heads
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]        # [B,heads,T,hd]
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, H))


class Mlp(nn.Module):
    def __init__(self, hidden, ratio=4, device=None):
        super().__init__()
        self.fc1 = nn.Linear(hidden, ratio * hidden, device=device)
        self.fc2 = nn.Linear(ratio * hidden, hidden, device=device)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def _layernorm(x):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)     # no affine


class DiTBlock(nn.Module):
    def __init__(self, hidden, heads, device=None):
        super().__init__()
        self.attn = Attention(hidden, heads, device=device)
        self.mlp = Mlp(hidden, device=device)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(),
                                              nn.Linear(hidden, 6 * hidden, device=device))

    def forward(self, x, c):
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g_a[:, None] * self.attn(modulate(_layernorm(x), sh_a, sc_a))
        return x + g_m[:, None] * self.mlp(modulate(_layernorm(x), sh_m, sc_m))


class FinalLayer(nn.Module):
    def __init__(self, hidden, patch, cout, device=None):
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(),
                                              nn.Linear(hidden, 2 * hidden, device=device))
        self.linear = nn.Linear(hidden, patch * patch * cout, device=device)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(_layernorm(x), shift, scale))


class DiT(nn.Module):
    """cfg keys: depth, hidden, heads, patch, in_channels, input_size [Hh,Ww],
    num_classes (0 = unconditional: no y_embedder), learn_sigma."""

    def __init__(self, cfg, device=None):
        super().__init__()
        self.cfg = dict(cfg)
        H, p, C = cfg["hidden"], cfg["patch"], cfg["in_channels"]
        Hh, Ww = cfg["input_size"]
        assert Hh % p == 0 and Ww % p == 0 and H % cfg["heads"] == 0
        self.gh, self.gw, self.p = Hh // p, Ww // p, p
        self.cout = 2 * C if cfg["learn_sigma"] else C
        self.x_embedder = PatchEmbed(p, C, H, device=device)
        self.t_embedder = TimestepEmbedder(H, device=device)
        if cfg["num_classes"] > 0:
            self.y_embedder = LabelEmbedder(cfg["num_classes"], H, device=device)
        # A frozen Parameter (as in DiT) so it sits in the state dict and in
        # parameters() — which is what DiT's published parameter counts count.
        pe = torch.empty(1, self.gh * self.gw, H, device=device)
        if pe.device.type != "meta":
            pe.copy_(torch.from_numpy(sincos_2d(H, self.gh, self.gw)).float()[None])
        self.pos_embed = nn.Parameter(pe, requires_grad=False)
        self.blocks = nn.ModuleList(DiTBlock(H, cfg["heads"], device=device)
                                    for _ in range(cfg["depth"]))
        self.final_layer = FinalLayer(H, p, self.cout, device=device)

    def unpatchify(self, x):                    # [B,T,p*p*Cout] -> [B,Cout,Hh,Ww]
        B, p, c = x.shape[0], self.p, self.cout
        x = x.reshape(B, self.gh, self.gw, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, c, self.gh * p, self.gw * p)

    def forward(self, x, t, y=None, trace=None):
        """x [B,C,Hh,Ww], t [B] float, y [B] long or None. If `trace` is a dict,
        it receives temb, c and every block output ("block.K")."""
        h = self.x_embedder(x) + self.pos_embed
        temb = self.t_embedder(t)
        c = temb + self.y_embedder(y) if hasattr(self, "y_embedder") else temb
        if trace is not None:
            trace["temb"], trace["c"] = temb, c
        for k, blk in enumerate(self.blocks):
            h = blk(h, c)
            if trace is not None:
                trace[f"block.{k}"] = h
        return self.unpatchify(self.final_layer(h, c))


# ----------------------------------------------------------------------------
# Diffusion objectives. Each returns (x_t, model time, target).

def ddpm_schedule():
    """float64 betas and alphas_cumprod of DiT's linear 1000-step schedule."""
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    return betas, np.cumprod(1.0 - betas)


def make_xt_target(objective, x, noise, t, pca=None):
    shape = (-1,) + (1,) * (x.dim() - 1)
    if objective == "ldae":
        return ldae_make_xt(x, noise, t, pca), t, x
    if objective == "sit_linear":               # data at t=1, noise at t=0
        tt = t.reshape(shape)
        return tt * x + (1 - tt) * noise, t, x - noise
    if objective == "sit_gvp":
        a = (math.pi / 2) * t.reshape(shape)
        xt = torch.sin(a) * x + torch.cos(a) * noise
        return xt, t, (math.pi / 2) * (torch.cos(a) * x - torch.sin(a) * noise)
    if objective == "ddpm":                     # integer t, noise at 999; predict eps
        _, ab = ddpm_schedule()
        idx = t.long().cpu().numpy()
        # Coefficients in float64, cast to the data dtype (DiT's _extract_into_tensor).
        sa = torch.from_numpy(np.sqrt(ab[idx])).to(x.dtype).reshape(shape)
        s1 = torch.from_numpy(np.sqrt(1.0 - ab[idx])).to(x.dtype).reshape(shape)
        return sa * x + s1 * noise, t, noise
    raise ValueError(f"unknown objective {objective}")


def diffusion_loss(out, target):
    """Per-sample mean over C*H*W, then batch mean; learned-sigma channels ignored."""
    pred = out[:, :target.shape[1]]
    return ((pred - target) ** 2).flatten(1).mean(1).mean()


# ----------------------------------------------------------------------------
# l-DAE (SPEC section 1.2) with a patch-wise PCA tokenizer given as a dict: patch, d,
# centered, mean [D], basis [D, D] (rows = components, float32 values).
# t = a noise level 0..999 (the model's time input), sigma_t = sqrt(2) t / 999.

LDAE_TAIL_WEIGHT = 0.1


def ldae_sigma(t):
    return math.sqrt(2.0) * t / 999.0


def pca_patches(x, p):
    """[B,C,H,W] -> [B,T,C*p*p]: row-major patches, each in (c, i, j) order."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, (H // p) * (W // p), C * p * p)


def pca_unpatches(v, p, C, H, W):
    """The inverse of pca_patches."""
    B = v.shape[0]
    v = v.reshape(B, H // p, W // p, C, p, p).permute(0, 3, 1, 4, 2, 5)
    return v.reshape(B, C, H, W)


def ldae_make_xt(x, noise, t, pca):
    """In float64: z0 = V_d (patch - mean), z_t = z0 + sigma_t eps with eps the first
    T*d values of each sample's noise, x_t = V_d^T z_t + mean (inverse PCA); cast to x's dtype."""
    assert not pca.get("whitened", 0)
    B, C, H, W = x.shape
    p, d = pca["patch"], pca["d"]
    V = torch.as_tensor(pca["basis"], dtype=torch.float64)[:d]
    mean = torch.as_tensor(pca["mean"], dtype=torch.float64) * (1.0 if pca["centered"] else 0.0)
    P = pca_patches(x.double(), p)
    T = P.shape[1]
    z0 = (P - mean) @ V.t()
    eps = noise.double().reshape(B, -1)[:, :T * d].reshape(B, T, d)
    zt = z0 + ldae_sigma(t.double()).reshape(B, 1, 1) * eps
    return pca_unpatches(zt @ V + mean, p, C, H, W).to(x.dtype)


def ldae_loss(out, x0, t, pca):
    """Per sample lambda_t * sum_{patches, i} w_i r_i^2 / (T D), r = V_full (x0 - out) per patch,
    w_i = 1 for i < d and 0.1 after, lambda_t = 1 / (1 + sigma_t^2); mean over the batch.
    Learned-sigma channels are ignored."""
    C = x0.shape[1]
    Vf = torch.as_tensor(pca["basis"], dtype=out.dtype)
    r = pca_patches(x0 - out[:, :C], pca["patch"]) @ Vf.t()      # [B, T, D]
    T, D = r.shape[1], r.shape[2]
    w = torch.full((D,), LDAE_TAIL_WEIGHT, dtype=out.dtype)
    w[:pca["d"]] = 1.0
    lam = (1.0 / (1.0 + ldae_sigma(t.double()) ** 2)).to(out.dtype)
    return (lam * (r ** 2 * w).sum((1, 2)) / (T * D)).mean()


# ----------------------------------------------------------------------------
# Dispersive Loss variants on z [B,D] (one row per sample).

def _sq_dists(z):
    """||z_i - z_j||^2 / D for all pairs, by explicit differences: unlike
    pdist/cdist it has a clean (zero) gradient on the diagonal."""
    diff = z[:, None, :] - z[None, :, :]
    return (diff ** 2).sum(-1) / z.shape[1]


def _log_mean_exp(a):                           # over all B^2 entries, stable
    return torch.logsumexp(a.reshape(-1), 0) - math.log(a.numel())


def disp_infonce_l2(z, tau=0.5, eps=None):
    return _log_mean_exp(-_sq_dists(z) / tau)


def disp_infonce_cos(z, tau=1.0, eps=None):
    u = F.normalize(z, dim=1, eps=1e-12)        # z / max(||z||, 1e-12)
    return _log_mean_exp((u @ u.t()) / tau)      # -d_ij / tau with d_ij = -cos


def disp_hinge(z, tau=None, eps=1.0):
    return (torch.clamp(eps - _sq_dists(z), min=0) ** 2).mean()


def disp_covariance(z, tau=None, eps=None):
    """Off-diagonal energy of the batch covariance of l2-normalised features,
    divided by D (our documented scaling)."""
    B, D = z.shape
    u = F.normalize(z, dim=1, eps=1e-12)
    uc = u - u.mean(0, keepdim=True)
    cov = uc.t() @ uc / (B - 1)                 # [D,D]
    off = cov - torch.diag(torch.diagonal(cov))
    return (off ** 2).sum() / D


DISP = {"infonce_l2": disp_infonce_l2, "infonce_cos": disp_infonce_cos,
        "hinge": disp_hinge, "covariance": disp_covariance}


def dispersive_loss(variant, zs, tau, eps):
    """Average over the listed blocks' outputs zs (each [B,T,H]) so lambda keeps
    its meaning whatever the number of blocks."""
    if variant == "none":
        return zs[0].new_zeros(())
    fn = DISP[variant]
    return sum(fn(z.flatten(1), tau=tau, eps=eps) for z in zs) / len(zs)
