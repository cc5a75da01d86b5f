"""What crosses the sandbox boundary: length-prefixed frames holding one message each.

A value becomes a JSON description plus named arrays. A message is the length of a JSON header, the
header (the description and, per array, its name, dtype and shape) and the arrays' raw bytes one
after the other, each starting at a multiple of 8 (torch reads them in place). Only plain numeric dtypes are accepted and the declared sizes must add up to the
bytes sent exactly, so nothing from the student's side is ever unpickled, decompressed or trusted
for a size. (An .npz archive did the same job at fifteen times the cost: a zip directory and a
Python-literal header to parse per array, on every call of a graded function.) This file is
imported by the trusted grader and, inside the sandbox, by the student runner; it needs only numpy.
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
import types

import numpy as np

HEADER = struct.Struct(">Q")
TABLE = struct.Struct(">I")
MAX_FRAME_BYTES = 256 * 1024 * 1024
MAX_ELEMENTS = 1 << 25       # per message: what the grader may widen to float64 stays within 256 MiB
MAX_DIMENSIONS = 8
ALLOWED_DTYPE_KINDS = "biuf"   # bool, signed, unsigned, float: never object or structured arrays
ALIGN = 8
DTYPE = re.compile(r"[<>|][%s][1248]" % ALLOWED_DTYPE_KINDS)   # numpy's dtype.str of those, nothing else


class WireError(Exception):
    pass


def pack(description, arrays: dict[str, np.ndarray]) -> bytes:
    table, blobs = [], []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        table.append([name, array.dtype.str, list(array.shape)])
        blobs.append(array.tobytes())
    header = json.dumps({"description": description, "arrays": table}).encode()
    parts, offset = [TABLE.pack(len(header)), header], TABLE.size + len(header)
    for blob in blobs:
        parts.append(bytes(-offset % ALIGN))
        parts.append(blob)
        offset += -offset % ALIGN + len(blob)
    return b"".join(parts)


def unpack(payload: bytes | bytearray):
    """(description, arrays); the arrays share `payload`'s memory (writable when it is a bytearray)."""
    try:
        (length,) = TABLE.unpack_from(payload)
        header = json.loads(bytes(payload[TABLE.size:TABLE.size + length]))
        description, table = header["description"], header["arrays"]
    except (struct.error, ValueError, TypeError, KeyError, RecursionError) as error:
        raise WireError(f"unreadable message ({type(error).__name__})") from None
    if not isinstance(table, list):
        raise WireError("unreadable message (no array table)")
    offset, elements, arrays = TABLE.size + length, 0, {}
    for entry in table:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and len(entry[0]) <= 64
                and isinstance(entry[1], str) and isinstance(entry[2], list)) or entry[0] in arrays:
            raise WireError("unreadable message (a malformed array entry)")
        name, dtype, shape = entry
        if not DTYPE.fullmatch(dtype):
            raise WireError(f"array {name!r} has a disallowed dtype {dtype[:20]!r}")
        if len(shape) > MAX_DIMENSIONS:
            raise WireError(f"an array of {len(shape)} dimensions (at most {MAX_DIMENSIONS} are accepted)")
        if not all(type(size) is int and 0 <= size <= MAX_ELEMENTS for size in shape):
            raise WireError(f"array {name!r} has a malformed shape")
        count = math.prod(shape)
        elements += count
        if elements > MAX_ELEMENTS:
            raise WireError(f"more than {MAX_ELEMENTS} numbers in one answer; the grader accepts at most that")
        dtype = np.dtype(dtype)
        offset += -offset % ALIGN
        if offset + count * dtype.itemsize > len(payload):
            raise WireError("message larger than its bytes")
        arrays[name] = np.frombuffer(payload, dtype, count, offset).reshape(tuple(shape))
        offset += count * dtype.itemsize
    if offset != len(payload):
        raise WireError("unreadable message (bytes beyond its arrays)")
    return description, arrays


def write_frame(fd: int, payload: bytes) -> None:
    data = memoryview(HEADER.pack(len(payload)) + payload)
    while data:
        written = os.write(fd, data)
        data = data[written:]


def read_frame(fd: int) -> bytearray | None:
    """Blocking read of one frame (used inside the sandbox); None at end of stream."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise WireError("frame too large")
    return _read_exactly(fd, length) if length else bytearray()


def _read_exactly(fd: int, count: int) -> bytearray | None:
    buffer = bytearray(count)
    view, got = memoryview(buffer), 0
    while got < count:
        read = os.readv(fd, [view[got:got + (1 << 20)]])
        if not read:
            return None
        got += read
    return buffer


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
