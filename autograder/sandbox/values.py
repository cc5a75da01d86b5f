"""Values that cross the wall: what the grader sends in (layers, handles) and gets back (tensors, images).

Arrays from the student's side come back as plain numpy-backed values the grader owns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autograder.sandbox.inside import wire


def trusted_to_numpy(value):
    import torch

    if isinstance(value, Linear):
        if value.bias is None:
            return "linear", value.weight
        return "affine", np.concatenate([value.weight, value.bias[:, None]], axis=1)
    if isinstance(value, PipelineHandle):
        return "pipeline", np.array([value.height, value.width], dtype=np.int64)
    if isinstance(value, ModelHandle):
        return "model", np.zeros(0, dtype=np.int8)
    if isinstance(value, GeneratorState):
        return "generator", value.state
    if isinstance(value, MetaTensor):
        return f"meta/{value.dtype}", np.array(value.shape, dtype=np.int64)
    if isinstance(value, torch.Tensor):
        return "tensor", value.detach().cpu().numpy().copy()
    return None


def rebuild(kind: str, array: np.ndarray):
    """Arrays from the student's side come back as plain numpy-backed values the grader owns."""
    import torch

    # Unsigned integers wider than a byte are half-supported in torch: most operations on them raise.
    widened = {"u2": np.int32, "u4": np.int64, "u8": np.float64}.get(array.dtype.str[1:])
    if widened is not None:
        array = array.astype(widened)
    if kind.startswith("meta/") and kind[5:] in META_DTYPES and array.ndim == 1 and array.size <= wire.MAX_DIMENSIONS:
        return MetaTensor(tuple(int(n) for n in array), kind[5:])
    if kind == "tensor":
        return torch.from_numpy(array.copy())
    if kind == "numpy_scalar":
        return array.reshape(()).item()
    if kind == "linear":
        return Linear(array)
    if kind.startswith("image/"):
        return StudentImage(kind.split("/", 1)[1][:16], array)
    raise wire.WireError(f"unknown value kind {kind[:40]!r}")


@dataclass
class Linear:
    """A projection layer, rebuilt as torch.nn.Linear inside the sandbox."""
    weight: np.ndarray   # (out_features, in_features)
    bias: np.ndarray | None = None   # (out_features,)

    def __call__(self, x):
        import torch

        y = x @ torch.from_numpy(self.weight).T.to(x.dtype)
        return y if self.bias is None else y + torch.from_numpy(self.bias).to(x.dtype)


@dataclass
class PipelineHandle:
    """Passed as an argument: the student's code receives a pipeline proxy whose calls come back to
    FunctionProcess.callbacks["pipeline"] (see student_calls.RecordingPipeline)."""
    height: int
    width: int


@dataclass
class ModelHandle:
    """Passed as an argument: the student's code receives a torch module whose calls come back to
    FunctionProcess.callbacks["model"], where the grader's own model answers and the call is recorded."""


@dataclass
class GeneratorState:
    """Passed as an argument: the student's code receives a CPU torch.Generator in this state."""
    state: np.ndarray   # torch.Generator.get_state() as uint8

    @classmethod
    def seeded(cls, seed: int) -> "GeneratorState":
        import torch

        return cls(torch.Generator().manual_seed(seed).get_state().numpy())


META_DTYPES = ("float32", "float64", "float16", "bfloat16", "bool", "int64", "int32")


@dataclass
class MetaTensor:
    """A tensor on PyTorch's meta device (a shape and a dtype, no values): sent in, the student's code gets
    one and its results stay there unless a tensor it makes is left on the CPU, as it would be on a GPU."""
    shape: tuple
    dtype: str = "float32"


@dataclass
class StudentImage:
    """A PIL image the student returned: its mode and pixels."""
    mode: str
    pixels: np.ndarray


def trusted_function_handler(function):
    """The grader's side of proxies.grader_function: calls `function` with the arguments sent."""

    def handle(request: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
        args = wire.decode(request["args"], arrays, from_array=rebuild)
        kwargs = wire.decode(request["kwargs"], arrays, from_array=rebuild)
        out: dict[str, np.ndarray] = {}
        return {"value": wire.encode(function(*args, **kwargs), out, to_numpy=trusted_to_numpy)}, out

    return handle
