"""Minimal safetensors reader/writer (numpy only).

The `safetensors` Python package is not installed on these machines, and the
format is small enough to do by hand:

    8 bytes   little-endian u64 N = length of the JSON header
    N bytes   JSON: {"__metadata__": {str: str}, name: {"dtype", "shape",
              "data_offsets": [begin, end]}, ...}; offsets are relative to
              the first byte after the header; padded with spaces so that
              the data starts at a multiple of 8
    rest      raw little-endian tensor bytes
"""
import json
import struct

import numpy as np

# safetensors dtype name <-> numpy dtype (little-endian explicitly, so the
# bytes on disk are right whatever the host is).
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
}


def _st_dtype(arr):
    # Match on kind + size so native/explicit byte-order spellings all map.
    for name, np_dt in _DTYPES.items():
        if arr.dtype.kind == np_dt.kind and arr.dtype.itemsize == np_dt.itemsize:
            return name, np_dt
    raise ValueError(f"unsupported dtype {arr.dtype} (supported: {sorted(_DTYPES)})")


def save(path, tensors, metadata=None):
    """Write {name: array-like} to `path`. Tensors are written in name order."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        dname, np_dt = _st_dtype(arr)
        raw = np.ascontiguousarray(arr, dtype=np_dt).tobytes()
        header[name] = {"dtype": dname, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)  # pad so data starts 8-aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def load(path):
    """Return (tensors: {name: np.ndarray}, metadata: {str: str})."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(data)}")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {info['dtype']}")
        dt = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * dt.itemsize or base + e > len(data):
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {b},{e}")
        tensors[name] = np.frombuffer(data, dtype=dt, count=count,
                                      offset=base + b).reshape(shape).copy()
    return tensors, metadata
