"""What crosses the sandbox boundary: length-prefixed frames holding one .npz archive each.

A value becomes a JSON description plus named arrays; the arrays travel as .npy entries and are
loaded with allow_pickle=False, so nothing from the student's side is ever unpickled. This file is
imported by the trusted grader and, inside the sandbox, by the student runner; it needs only numpy.
"""
from __future__ import annotations

import io
import json
import os
import struct
import types
import zipfile

import numpy as np

HEADER = struct.Struct(">Q")
MAX_FRAME_BYTES = 256 * 1024 * 1024
MAX_ELEMENTS = 1 << 25       # per message: what the grader may widen to float64 stays within 256 MiB
MAX_DIMENSIONS = 8
ALLOWED_DTYPE_KINDS = "biuf"   # bool, signed, unsigned, float: never object or structured arrays


class WireError(Exception):
    pass


def pack(description, arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    entries = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    entries["__description__"] = np.frombuffer(json.dumps(description).encode(), dtype=np.uint8)
    np.savez(buffer, **entries)
    return buffer.getvalue()


def _check_archive(payload: bytes) -> None:
    """pack() never compresses: a compressed member could inflate to gigabytes in the grader."""
    try:
        members = zipfile.ZipFile(io.BytesIO(payload)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise WireError(f"unreadable message ({type(error).__name__})") from None
    if any(m.compress_type != zipfile.ZIP_STORED for m in members):
        raise WireError("compressed message")
    if sum(m.file_size for m in members) > len(payload):
        raise WireError("message larger than its bytes")


def unpack(payload: bytes):
    _check_archive(payload)
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        description = json.loads(arrays.pop("__description__").tobytes().decode())
    except WireError:
        raise
    except Exception as error:
        raise WireError(f"unreadable message ({type(error).__name__})") from None
    elements = 0
    for name, array in arrays.items():
        if array.dtype.kind not in ALLOWED_DTYPE_KINDS:
            raise WireError(f"array {name!r} has a disallowed dtype {array.dtype}")
        if array.ndim > MAX_DIMENSIONS:
            raise WireError(f"an array of {array.ndim} dimensions (at most {MAX_DIMENSIONS} are accepted)")
        elements += array.size
    if elements > MAX_ELEMENTS:
        raise WireError(f"{elements} numbers in one answer; the grader accepts at most {MAX_ELEMENTS}")
    return description, arrays


def write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(HEADER.pack(len(payload)) + payload)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_frame(fd: int) -> bytes | None:
    """Blocking read of one frame (used inside the sandbox); None at end of stream."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise WireError("frame too large")
    return _read_exactly(fd, length) if length else b""


def _read_exactly(fd: int, count: int) -> bytes | None:
    chunks, remaining = [], count
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# ---- values <-> (description, arrays) -------------------------------------------------------
# Descriptions are small JSON trees: {"kind": ...}. Tensors and arrays refer to an array by name.

def encode(value, arrays: dict[str, np.ndarray], *, to_numpy=None):
    """Describe `value`; `to_numpy(value)` returns an ndarray for tensor-like values or None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not np.isfinite(value):
            return {"kind": "float", "repr": repr(value)}
        return {"kind": "scalar", "value": value}
    if isinstance(value, (list, tuple)):
        return {"kind": type(value).__name__ if type(value) in (list, tuple) else "sequence",
                "items": [encode(item, arrays, to_numpy=to_numpy) for item in value]}
    if type(value) is types.SimpleNamespace:   # an object the code under test reads attributes of (a layer)
        return {"kind": "namespace", "items": {k: encode(v, arrays, to_numpy=to_numpy) for k, v in vars(value).items()}}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"kind": "dict", "items": {k: encode(v, arrays, to_numpy=to_numpy) for k, v in value.items()}}
    if isinstance(value, np.ndarray) and type(value) is np.ndarray:
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"kind": "ndarray", "array": name}
    if to_numpy is not None:
        converted = to_numpy(value)
        if converted is not None:
            kind, array = converted
            name = f"a{len(arrays)}"
            arrays[name] = array
            return {"kind": kind, "array": name}
    return {"kind": "object", "type": f"{type(value).__module__}.{type(value).__qualname__}"[:200]}


def decode(description, arrays: dict[str, np.ndarray], *, from_array=None):
    """Inverse of encode; `from_array(kind, array)` rebuilds tensor-like values."""
    kind = description.get("kind") if isinstance(description, dict) else None
    if kind == "scalar":
        return description["value"]
    if kind == "float":
        return float(description["repr"])
    if kind in ("list", "tuple", "sequence"):
        items = [decode(item, arrays, from_array=from_array) for item in description["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: decode(v, arrays, from_array=from_array) for k, v in description["items"].items()}
    if kind == "namespace":
        return types.SimpleNamespace(**{k: decode(v, arrays, from_array=from_array)
                                        for k, v in description["items"].items() if k.isidentifier()})
    if kind == "ndarray":
        return arrays[description["array"]]
    if kind == "object":
        return ForeignObject(str(description.get("type", "?")))
    if kind is not None and from_array is not None:
        name = description.get("array")
        if name is not None and name not in arrays:
            raise WireError(f"missing array {str(name)[:40]!r}")
        return from_array(kind, None if name is None else arrays[name])
    raise WireError(f"unknown value description {str(description)[:80]!r}")


class ForeignObject:
    """Stands for a returned value that cannot cross the boundary (only its type name does)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self):
        return f"<{self.type_name} object>"
