#!/usr/bin/python3
"""Inception-v3 weights for `ddm eval --features inception` (src/eval/inception.h).

    # a pytorch-fid checkpoint (pt_inception-2015-12-05-*.pth, the TF FID weights) or any
    # torchvision-style Inception-v3 state dict -> the safetensors file ddm reads
    /usr/bin/python3 tools/inception_convert.py --pth pt_inception-2015-12-05-6726825d.pth \\
        --flavour fid --out inception.safetensors

    # random weights plus reference inputs and features (the parity test, needs torchvision)
    /usr/bin/python3 tools/inception_convert.py --random 0 --flavour both --out DIR

The file holds the 94 convolutions' tensors under torchvision's names (<layer>.conv.weight,
<layer>.bn.weight / bias / running_mean / running_var) as float32; the classifier (fc), the auxiliary
head and num_batches_tracked are dropped. Metadata: format, flavour (the blocks the weights are meant
for: fid = pytorch-fid's FIDInception blocks, torchvision = torchvision's), source.

--random writes DIR/inception_<flavour>.safetensors, and for two input batches k (x1: 2 images 28x28x1,
x3: 1 image 32x32x3, values in [-1, 1]) DIR/inception_<flavour>_<k>.npy (input) and
DIR/inception_<flavour>_<k>_feat.npy (the 2048-d features PyTorch computes in float32). The input
pipeline is pytorch-fid's for images already in [-1, 1]: bilinear resize to 299x299
(align_corners=False), one channel repeated three times. Weights: torchvision's init
(inception_v3(weights=None, aux_logits=False, init_weights=True)), random BatchNorm affine parameters,
running statistics measured on random images (so activations stay O(1) through the 94 layers) and
then perturbed. If torchvision cannot be imported it writes DIR/SKIP with the reason and exits 0.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st                                    # noqa: E402

FORMAT = "ddm-inception-v3"
BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def feature_tensors(state):
    """The conv/BN tensors of the feature extractor, float32 numpy, from a state dict."""
    out = {}
    for name, value in state.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.startswith("AuxLogits.") or name.startswith("fc."):
            continue
        if name.endswith(".conv.weight") or any(name.endswith(".bn." + f) for f in BN_FIELDS):
            out[name] = value.detach().cpu().numpy().astype(np.float32)
    n_conv = sum(k.endswith(".conv.weight") for k in out)
    if n_conv != 94:
        raise SystemExit(f"inception_convert: expected the 94 convolutions of Inception-v3, found {n_conv}")
    return out


def save(path, tensors, flavour, source):
    st.save(path, tensors, {"format": FORMAT, "flavour": flavour, "source": source})


def convert(args):
    try:
        state = torch.load(args.pth, map_location="cpu", weights_only=True)
    except TypeError:                        # torch before 1.13: no weights_only
        state = torch.load(args.pth, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    tensors = feature_tensors(state)
    save(args.out, tensors, args.flavour, os.path.basename(args.pth))
    print(f"inception_convert: {len(tensors)} tensors -> {args.out} (flavour {args.flavour})")


# ---------------------------------------------------------------- the FID blocks, for the reference
def fid_blocks(tvi):
    """pytorch-fid's block variants as subclasses of torchvision's blocks (same parameters)."""
    def avg(x):
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    class FidA(tvi.InceptionA):
        def _forward(self, x):
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return [self.branch1x1(x), b5, b3, self.branch_pool(avg(x))]

    class FidC(tvi.InceptionC):
        def _forward(self, x):
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = self.branch7x7dbl_1(x)
            for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
                d = layer(d)
            return [self.branch1x1(x), b7, d, self.branch_pool(avg(x))]

    class FidE(tvi.InceptionE):
        pool = staticmethod(avg)

        def _forward(self, x):
            t = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            return [self.branch1x1(x), b3, bd, self.branch_pool(self.pool(x))]

    class FidEMax(FidE):                       # Mixed_7c: a max pool in the pool branch
        pool = staticmethod(lambda x: F.max_pool2d(x, kernel_size=3, stride=1, padding=1))

    return FidA, FidC, FidE, FidEMax


def tv_net():
    import torchvision.models.inception as tvi
    net = tvi.inception_v3(weights=None, aux_logits=False, init_weights=True)
    net.fc = torch.nn.Identity()               # the forward then returns the 2048-d pooled features
    return net


def as_flavour(net, flavour):
    """net (torchvision's) with pytorch-fid's blocks swapped in for the fid flavour (in place)."""
    if flavour == "fid":
        import torchvision.models.inception as tvi
        fid_a, fid_c, fid_e, fid_e_max = fid_blocks(tvi)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
            getattr(net, name).__class__ = fid_a
        for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            getattr(net, name).__class__ = fid_c
        net.Mixed_7b.__class__ = fid_e
        net.Mixed_7c.__class__ = fid_e_max
    return net


def pipeline(x):
    """pytorch-fid's input path for images in [-1, 1]."""
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def randomise(net, gen):
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)
            bn.bias.copy_(0.3 * torch.randn(bn.num_features, generator=gen))
            bn.reset_running_stats()
            bn.momentum = None                 # cumulative average: one batch -> its statistics
        net.train()
        net(pipeline(torch.rand(4, 3, 24, 24, generator=gen) * 2 - 1))
        for bn in bns:
            sd = bn.running_var.sqrt()
            bn.running_mean.add_(0.1 * sd * torch.randn(bn.num_features, generator=gen))
            bn.running_var.mul_(torch.rand(bn.num_features, generator=gen) * 0.7 + 0.7)
    net.eval()


def random_reference(args):
    try:
        import torchvision  # noqa: F401
    except ImportError as e:
        with open(os.path.join(args.out, "SKIP"), "w") as f:
            f.write(f"torchvision is not importable by {sys.executable} ({e}); "
                    "install python3-torchvision (tools/setup.sh)\n")
        print("inception_convert: torchvision missing, wrote SKIP", file=sys.stderr)
        return
    torch.manual_seed(args.random)
    torch.set_num_threads(1)
    init = tv_net()                            # the same initial weights for every flavour
    for flavour in ("fid", "torchvision") if args.flavour == "both" else (args.flavour,):
        gen = torch.Generator().manual_seed(args.random + 1)
        net = as_flavour(copy.deepcopy(init), flavour)
        randomise(net, gen)
        base = os.path.join(args.out, f"inception_{flavour}")
        save(base + ".safetensors", feature_tensors(net.state_dict()), flavour, f"random seed {args.random}")
        inputs = {"x1": torch.rand(2, 1, 28, 28, generator=gen) * 2 - 1,
                  "x3": torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1}
        with torch.no_grad():
            for key, x in inputs.items():
                feat = net(pipeline(x))
                np.save(f"{base}_{key}.npy", x.numpy())
                np.save(f"{base}_{key}_feat.npy", feat.numpy())
                msg = f"inception_convert: {flavour} {key}: features in [{feat.min():.3g}, {feat.max():.3g}]"
                if args.float64:               # how far float32 PyTorch itself is from the exact features
                    exact = copy.deepcopy(net).double()(pipeline(x.double()))
                    np.save(f"{base}_{key}_feat64.npy", exact.numpy())
                    msg += f", float32 vs float64 max abs diff {(feat.double() - exact).abs().max().item():.3g}"
                print(msg)
    skip = os.path.join(args.out, "SKIP")
    if os.path.exists(skip):
        os.remove(skip)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pth", help="state dict to convert (pytorch-fid's or torchvision's Inception-v3)")
    ap.add_argument("--random", type=int, metavar="SEED", help="random weights + reference features instead")
    ap.add_argument("--flavour", choices=("fid", "torchvision", "both"), default="fid",
                    help="the blocks the weights are for (both: --random only, one file set each)")
    ap.add_argument("--float64", action="store_true",
                    help="--random: also write the float64 features (<k>_feat64.npy) and print float32's error")
    ap.add_argument("--out", required=True, help="the .safetensors file (--pth) or a directory (--random)")
    args = ap.parse_args()
    if (args.pth is None) == (args.random is None):
        ap.error("give exactly one of --pth and --random")
    if args.pth:
        if args.flavour == "both":
            ap.error("--flavour both is for --random")
        convert(args)
    else:
        os.makedirs(args.out, exist_ok=True)
        random_reference(args)


if __name__ == "__main__":
    main()
