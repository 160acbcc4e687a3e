#!/usr/bin/python3
"""Seed corpora for the fuzz harnesses, generated rather than committed: one small valid file (and a few
variants) per format, so that the fuzzer starts from inputs that reach deep into each parser.

usage: seeds.py OUT_DIR [CHECKPOINT]   writes OUT_DIR/<harness>/*; CHECKPOINT, a small ddm checkpoint, seeds
the safetensors harness with a real model's header and config (tests/fuzz/run.sh trains one)."""
import gzip
import io
import os
import struct
import sys
import zipfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import st  # noqa: E402  (tools/st.py: the safetensors writer)

out = sys.argv[1]


def put(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy_bytes(a, version=None):
    b = io.BytesIO()
    if version:
        np.lib.format.write_array(b, a, version=version)
    else:
        np.save(b, a)
    return b.getvalue()


def npz_bytes(compressed, **arrays):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()


rng = np.random.default_rng(0)

# npy: every accepted dtype, versions 1 to 3, 0-d to 4-d
for i, (dt, shape) in enumerate([("<f4", (2, 3)), ("<f8", (4,)), ("<i8", (2, 2)), ("<i4", ()), ("|u1", (3, 1, 2)),
                                 ("|i1", (1, 1, 2, 2)), ("<f4", (0, 3))]):
    put("npy", f"a{i}.npy", npy_bytes(rng.integers(0, 9, size=shape).astype(dt)))
put("npy", "v2.npy", npy_bytes(np.ones((2, 2), "<f4"), (2, 0)))
put("npy", "v3.npy", npy_bytes(np.ones((2,), "<f4"), (3, 0)))

# npz: stored and deflated
put("npz", "stored.npz", npz_bytes(False, arr_0=np.arange(6, dtype="<f4").reshape(2, 3), labels=np.arange(2)))
put("npz", "deflated.npz", npz_bytes(True, x=np.zeros((2, 2), "<f8")))

# images: PNG grey/RGB/RGBA/palette/16-bit, JPEG grey/RGB
def img_bytes(im, fmt):
    b = io.BytesIO()
    im.save(b, fmt)
    return b.getvalue()


px = rng.integers(0, 255, size=(6, 5, 3), dtype=np.uint8)
put("image", "rgb.png", img_bytes(Image.fromarray(px), "PNG"))
put("image", "grey.png", img_bytes(Image.fromarray(px[..., 0]), "PNG"))
put("image", "rgba.png", img_bytes(Image.fromarray(np.dstack([px, px[..., :1]])), "PNG"))
put("image", "pal.png", img_bytes(Image.fromarray(px).convert("P"), "PNG"))
put("image", "16bit.png", img_bytes(Image.fromarray((px[..., 0].astype(np.uint16) * 257), "I;16"), "PNG"))
put("image", "rgb.jpg", img_bytes(Image.fromarray(px), "JPEG"))
put("image", "grey.jpg", img_bytes(Image.fromarray(px[..., 0]), "JPEG"))

# IDX: mode byte (0 images, 1 images through the data source, 2 labels; byte 1 of a labels input is count - 1)
imgs = struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(18))
labs = struct.pack(">II", 0x801, 2) + bytes([1, 7])
put("idx", "images", b"\x00" + imgs)
put("idx", "images.gz", b"\x00" + gzip.compress(imgs))
put("idx", "source", b"\x01" + imgs)
put("idx", "labels", b"\x02" + labs)
put("idx", "labels.gz", b"\x02" + gzip.compress(labs))

# config files: the shipped ones that are small, and one with every kind of line
cfgdir = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
for name in sorted(os.listdir(cfgdir)):
    p = os.path.join(cfgdir, name)
    if name.endswith(".conf") and os.path.getsize(p) < 4096:
        put("config", name, open(p, "rb").read())
put("config", "mixed.conf", b"# comment\nsteps = 3\nbatch=4  # trailing\n\nflip = yes\nlr = 1e-4\ndisp = infonce_l2\n"
    b"disp-blocks = 0,1\ndepth = 2\nhidden = 32\nheads = 2\npatch = 7\nseed = 18446744073709551615\n")

# CIFAR: one CIFAR-10 record (label + 3072 pixels), one CIFAR-100 record (coarse, fine + pixels)
put("cifar", "c10.bin", bytes([3]) + rng.integers(0, 255, 3072, dtype=np.uint8).tobytes())
put("cifar", "c100.bin", bytes([4, 42]) + rng.integers(0, 255, 3072, dtype=np.uint8).tobytes())

# latents: byte 0 = 0 (.npy) or 1 (.npz), bytes 1-2 = length of a labels .npy that comes first
lat = rng.standard_normal((2, 4, 2, 2)).astype("<f4")
lab = npy_bytes(np.array([0, 3], "<i8"))
put("latents", "npy", b"\x00\x00\x00" + npy_bytes(lat))
put("latents", "npy_f8_labels", b"\x00" + struct.pack("<H", len(lab)) + lab + npy_bytes(lat.astype("<f8")))
put("latents", "npz", b"\x01\x00\x00" + npz_bytes(False, latents=lat, labels=np.array([1, 2])))
put("latents", "npz_deflated", b"\x01\x00\x00" + npz_bytes(True, x=lat))

# safetensors: small hand-made files, and a real checkpoint if one was given
tmp = os.path.join(out, "tmp.safetensors")
st.save(tmp, {"a": np.ones((2, 3), "<f4"), "b": np.arange(3, dtype="<i8")}, {"format": "x"})
put("safetensors", "small.safetensors", open(tmp, "rb").read())
st.save(tmp, {"pca.basis": np.ones((2, 3), "<f4")}, {"config": '{"model":{"depth":2}}', "step": "3"})
put("safetensors", "meta.safetensors", open(tmp, "rb").read())
os.remove(tmp)
if len(sys.argv) > 2:
    put("safetensors", "ckpt.safetensors", open(sys.argv[2], "rb").read())
