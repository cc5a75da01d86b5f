"""What one message between the grader and a sandboxed function costs to pack and read (not a test).

A typical call of a graded function: a description and five small float32 arrays (cross_attention's
inputs and weights). Times `wire.pack` followed by `wire.unpack` (autograder/sandbox/inside/wire.py) and,
for comparison, the `.npz` archive per message that the wire replaced (numpy's savez / load).

    python benchmarks/wire.py
"""
from __future__ import annotations

import io
import sys
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.sandbox.inside import wire  # noqa: E402

RUNS = 2000


def message() -> tuple[dict, dict[str, np.ndarray]]:
    generator = np.random.default_rng(0)
    shapes = {"x_spatial": (16, 32), "x_text": (7, 32), "W_Q": (32, 32), "W_K": (32, 32), "W_V": (32, 32)}
    arrays = {name: generator.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    return {"args": [{"array": name} for name in arrays], "kwargs": {}}, arrays


def as_npz(description: dict, arrays: dict[str, np.ndarray]) -> dict:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def main() -> None:
    description, arrays = message()
    for label, round_trip in (("wire.pack + wire.unpack", lambda: wire.unpack(wire.pack(description, arrays))),
                              (".npz archive (savez + load)", lambda: as_npz(description, arrays))):
        seconds = min(timeit.repeat(round_trip, number=RUNS, repeat=5)) / RUNS
        print(f"{label:30s} {seconds * 1e3:.3f} ms per message")


if __name__ == "__main__":
    main()
