"""Hidden checks for Exercise 2: flow_matching_pair(x0, noise, t) -> (x_t, target)."""
import numpy as np
import pytest
import torch

from autograder.grading.expectations import close, expect, same_dtype, tensor_pair, unchanged
from text_to_image.reference import flow_matching_pair as reference

check = pytest.mark.check


@pytest.fixture(scope="module")
def pair(student):
    function = student.function("flow_matching_pair")

    def run(x0, noise, t):
        result = function(x0, noise, t)
        x_t, target = tensor_pair(result, "flow_matching_pair", "x_t", "target")
        expect(x_t.shape == x0.shape and target.shape == x0.shape,
               f"x_t and the target should have the images' shape {tuple(x0.shape)}, not {tuple(x_t.shape)} and "
               f"{tuple(target.shape)}")
        expect(unchanged([x0, noise, t], function.inputs_after_last_call[0]),
               "flow_matching_pair changed its inputs in place: build new tensors")
        return x_t, target
    return run


def batch(seed, *shape):
    rng = np.random.default_rng(seed)
    return (torch.from_numpy(rng.standard_normal(shape).astype(np.float32)),
            torch.from_numpy(rng.standard_normal(shape).astype(np.float32)),
            torch.from_numpy(rng.uniform(0.05, 0.95, shape[0]).astype(np.float32)))


def interpolation_slip(x_t, x0, noise, t):
    flipped = t.view(-1, *([1] * (x0.dim() - 1)))
    if close(x_t, flipped * x0 + (1 - flipped) * noise):
        return ("x_t runs the wrong way: at t = 0 it should be the clean image and at t = 1 the noise, "
                "x_t = (1 - t) x0 + t noise")
    if close(x_t, (1 - t.mean()) * x0 + t.mean() * noise) or close(x_t, x0 * (1 - t[0]) + noise * t[0]):
        return "every image uses the same time: each image has its own t, reshaped to (B, 1, 1, 1)"
    return "x_t should be (1 - t) x0 + t noise, with each image's own t reaching all of its pixels"


@check("flow_matching_pair: x_t is the clean image at t = 0 and the noise at t = 1", points=1, visible=True)
def test_ends(pair):
    x0, noise, _ = batch(1, 4, 3, 5, 5)
    x_t, _ = pair(x0, noise, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    expect(close(x_t[0::2], x0[0::2]) and close(x_t[1::2], noise[1::2]),
           interpolation_slip(x_t, x0, noise, torch.tensor([0.0, 1.0, 0.0, 1.0])))


@check("flow_matching_pair: x_t = (1 - t) x0 + t noise with each image's own t, for any image shape", points=1)
def test_interpolation(pair):
    for shape in ((5, 3, 4, 4), (6, 10), (3, 2, 3, 4, 2)):
        x0, noise, t = batch(sum(shape), *shape)
        x_t, _ = pair(x0, noise, t)
        expected, _ = reference(x0.double(), noise.double(), t.double())
        if not close(x_t, expected):
            expect(False, interpolation_slip(x_t, x0, noise, t) + f" (images of shape {shape[1:]})")
        same_dtype(x_t, x0.dtype, "x_t")


@check("flow_matching_pair: the target velocity is noise - x0", points=1)
def test_target(pair):
    x0, noise, t = batch(7, 4, 1, 8, 8)
    _, target = pair(x0, noise, t)
    expect(not close(target, x0 - noise), "the target has the wrong sign: the path goes from x0 to the noise, "
                                          "so its velocity is noise - x0")
    expect(not close(target, noise), "the target is the noise itself (that is epsilon-prediction): the velocity of "
                                     "the path is noise - x0")
    expect(close(target, noise.double() - x0.double()), "the target should be the velocity noise - x0 "
                                                          "(the same for every t)")
    same_dtype(target, x0.dtype, "the target")
