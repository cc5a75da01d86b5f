"""What a hidden check says when it fails: a message for the student, never the hidden inputs."""
from __future__ import annotations

import numpy as np
import torch


class CheckFailed(Exception):
    """A check's verdict; its message is shown to the student as is."""


def expect(condition, message: str) -> None:
    if not bool(condition):
        raise CheckFailed(message)


def as_tensor(value, what: str) -> torch.Tensor:
    """The student's value as a tensor the grader owns, or a clear failure."""
    expect(isinstance(value, torch.Tensor),
           f"{what} should be a torch tensor, but it is {describe(value)}")
    return value


def tensor_pair(result, function: str, first: str, second: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two tensors a function should return as (first, second), or a clear failure."""
    expect(isinstance(result, (tuple, list)) and len(result) == 2,
           f"{function} should return a pair ({first}, {second}), but it returned {describe(result)}")
    return (as_tensor(result[0], f"the first returned value ({first})"),
            as_tensor(result[1], f"the second returned value ({second})"))


def same_dtype(value: torch.Tensor, dtype: torch.dtype, what: str) -> None:
    """The student's tensor kept the inputs' dtype (a .double() or .half() slip changes what callers get)."""
    expect(value.dtype == dtype, f"{what} is {str(value.dtype).removeprefix('torch.')} for "
                                 f"{str(dtype).removeprefix('torch.')} inputs: keep the inputs' dtype "
                                 "(no .double(), .half() or .float() on the way)")


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if value is None:
        return "None (did you forget a return statement?)"
    return f"a {getattr(value, 'type_name', type(value).__name__)}"


def close(actual: torch.Tensor, expected: torch.Tensor, *, rtol=1e-4, atol=1e-5) -> bool:
    """Same shape, all finite, equal within tolerance (NaN never passes)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    return (actual.shape == expected.shape and bool(torch.isfinite(actual).all())
            and bool(torch.allclose(actual, expected, rtol=rtol, atol=atol)))


def unchanged(before, after) -> bool:
    """Inputs as the student's code left them equal the inputs the grader sent."""
    if isinstance(before, torch.Tensor):
        return (isinstance(after, torch.Tensor) and before.shape == after.shape
                and torch.equal(before.isnan(), after.isnan())
                and torch.equal(torch.nan_to_num(before), torch.nan_to_num(after)))
    if isinstance(getattr(before, "weight", None), np.ndarray):
        return hasattr(after, "weight") and np.array_equal(before.weight, after.weight)
    if isinstance(before, (list, tuple)):
        return isinstance(after, (list, tuple)) and len(before) == len(after) and all(
            unchanged(b, a) for b, a in zip(before, after))
    if isinstance(before, dict):
        return isinstance(after, dict) and before.keys() == after.keys() and all(
            unchanged(before[k], after[k]) for k in before)
    return True
