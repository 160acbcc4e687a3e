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
# The l-DAE deconstruction trajectory (SPEC section 1.2) as one objective, "denoise", with five settings
# (cfg keys as in ddm's checkpoint config): noise, tokenizer, target, pca_output, loss_weight. Written from
# SPEC 1.2 and docs/conventions.md, in float64: t = an integer noise level 0..999 (the model's time input),
# z_t = gamma_t z0 + sigma_t eps with z0 the clean image (pixel tokenizer) or its PCA latent (pca).

def denoise_gamma_sigma(noise, t):
    """float64 gamma_t, sigma_t [B] of a noise schedule at the integer levels t [B]."""
    t = t.double()
    if noise == "ddpm_linear":                  # DiT's betas linear 1e-4..0.02: gamma^2 = alpha-bar_t
        abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)[t.long()]
        return abar.sqrt(), (1 - abar).sqrt()
    if noise == "gamma2_linear":                # gamma^2 linear from 1 to 0, variance preserving
        return (1 - t / 999).sqrt(), (t / 999).sqrt()
    if noise == "sigma_linear":                 # no input scaling; sigma linear from 0 to sqrt 2
        return torch.ones_like(t), math.sqrt(2) * t / 999
    raise ValueError(f"unknown noise schedule {noise}")


class PatchPCA:
    """The patch-wise PCA tokenizer as float64 maps on [B,C,H,W] images. With V the top d rows of the
    basis, m the mean if centred (else 0) and s = sqrt(eigenvalue) if whitened (else 1), per patch:
    encode z = V (x - m) / s, decode x = V^T (s z) + m; its linear part (the map of a difference of
    images, e.g. of noise) drops m: lin_encode x = V x / s, lin_decode z = V^T (s z)."""

    def __init__(self, pca, shape):
        self.p, self.d, self.shape = pca["patch"], pca["d"], shape
        self.V_full = torch.as_tensor(np.asarray(pca["basis"]), dtype=torch.float64)
        self.V = self.V_full[:self.d]
        self.m = torch.as_tensor(np.asarray(pca["mean"]), dtype=torch.float64) * float(pca["centered"])
        ev = torch.as_tensor(np.asarray(pca["eigenvalues"][:self.d]), dtype=torch.float64)
        self.s = ev.sqrt() if pca["whitened"] else torch.ones(self.d, dtype=torch.float64)

    def patches(self, img):                     # [B,C,H,W] -> [B,T,D] float64
        return pca_patches(img.double(), self.p)

    def image(self, P):                         # [B,T,D] -> [B,C,H,W]
        return pca_unpatches(P, self.p, *self.shape)

    def lin_encode(self, img):
        return self.patches(img) @ self.V.t() / self.s

    def encode(self, img):
        return (self.patches(img) - self.m) @ self.V.t() / self.s

    def lin_decode(self, z):
        return self.image((z * self.s) @ self.V)

    def decode(self, z):
        return self.image((z * self.s) @ self.V + self.m)


def denoise_make(cfg, x, noise, t, pca=None):
    """The denoise objective on a batch: (x_t, target image, loss), x_t and the target cast to x's
    dtype, loss(out) the batch mean of the per-sample losses (computed in float64, returned in out's
    dtype; the learned-sigma channels of out are ignored).
      pixel: x_t = gamma x + sigma eps; target eps (noise) or x (image).
      pca:   z0 = encode(x), eps = the first T*d values of the sample's noise as [T, d],
             x_t = decode(gamma z0 + sigma eps); the target image is lin_decode(eps) (noise),
             decode(z0) (latent, the PCA reconstruction of x) or x (image).
    Loss: pca_output image, mse: the pixel MSE; loss_weight ldae: lambda_t sum_i w_i r_i^2 / (T D) with
    r = V_full (target - out) per patch, w_i = 1 (i < d) / 0.1, lambda_t = 1/(1 + sigma_t^2);
    pca_output latent: the output read back into the latent by the inverse of the map that made the
    target image (lin_encode for noise, encode for latent), sum (zhat - z_target)^2 / (T d)."""
    B, C, H, W = x.shape
    g, s = denoise_gamma_sigma(cfg["noise"], t)
    kind, output, weight = cfg["target"], cfg["pca_output"], cfg["loss_weight"]
    x64 = x.double()
    if cfg["tokenizer"] == "pixel":
        assert kind in ("noise", "image") and output == "image" and weight == "mse"
        eps = noise.double()
        xt = g.reshape(B, 1, 1, 1) * x64 + s.reshape(B, 1, 1, 1) * eps
        target = eps if kind == "noise" else x64
    else:
        tok = PatchPCA(pca, (C, H, W))
        z0 = tok.encode(x64)
        T, d = z0.shape[1], z0.shape[2]
        eps = noise.double().reshape(B, -1)[:, :T * d].reshape(B, T, d)
        xt = tok.decode(g.reshape(B, 1, 1) * z0 + s.reshape(B, 1, 1) * eps)
        target = {"noise": lambda: tok.lin_decode(eps), "latent": lambda: tok.decode(z0),
                  "image": lambda: x64}[kind]()
        if output == "latent":
            assert kind != "image" and weight == "mse"
            read, z_target = (tok.lin_encode, eps) if kind == "noise" else (tok.encode, z0)

    def loss(out):
        o = out[:, :C].double()
        if cfg["tokenizer"] == "pca" and output == "latent":
            per = ((read(o) - z_target) ** 2).sum((1, 2)) / (T * d)
        elif weight == "ldae":
            r = tok.patches(target - o) @ tok.V_full.t()
            w = torch.full((r.shape[2],), LDAE_TAIL_WEIGHT, dtype=torch.float64)
            w[:d] = 1.0
            per = (r ** 2 * w).sum((1, 2)) / (r.shape[1] * r.shape[2]) / (1 + s ** 2)
        else:
            per = ((o - target) ** 2).flatten(1).mean(1)
        return per.mean().to(out.dtype)

    return xt.to(x.dtype), target.to(x.dtype), loss


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
