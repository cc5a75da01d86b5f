"""Hidden checks for Exercise 3's curve: guidance_norms(noise_uncond, noise_cond, guidance_scales) -> list of floats.

While guidance_norms runs, the notebook's apply_cfg is the grader's own (the sandbox sends its calls
here), so a slip in apply_cfg costs apply_cfg's points only, and the norms are the formula's.
"""
import math

import pytest
import torch

from autograder.grading.expectations import describe, expect, unchanged

check = pytest.mark.check

SCALES = [0.0, 0.5, 1.0, 2.25, 9.5, 17.0, -1.0]


def predictions(seed, shape):
    generator = torch.Generator().manual_seed(seed)
    uncond = torch.randn(shape, generator=generator) * 0.5
    return uncond, uncond + 0.1 * torch.randn(shape, generator=generator)


def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    """The grader's apply_cfg: what the student's guidance_norms calls while it is graded."""
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond)


def expected_norms(uncond, cond, scales):
    return [float(apply_cfg(uncond.double(), cond.double(), w).norm()) for w in scales]


@pytest.fixture(scope="module")
def guidance_norms(student):
    return student.function("guidance_norms", trusted={"apply_cfg": apply_cfg})


@pytest.fixture(scope="module")
def case():
    uncond, cond = predictions(11, (3, 4, 4))
    return uncond, cond, expected_norms(uncond, cond, SCALES)


def norms_of(guidance_norms, uncond, cond, scales):
    result = guidance_norms(uncond, cond, list(scales))
    expect(isinstance(result, (list, tuple)),
           f"guidance_norms should return a list of floats, but it returned {describe(result)}")
    return list(result)


@check("guidance_norms: one Python float per scale", points=1, visible=True)
def test_one_float_per_scale(guidance_norms, case):
    uncond, cond, _ = case
    norms = norms_of(guidance_norms, uncond, cond, SCALES)
    expect(len(norms) == len(SCALES), f"for {len(SCALES)} guidance scales guidance_norms returned {len(norms)} values: "
                                      "append exactly one norm per scale")
    kinds = {type(value).__name__ for value in norms}
    expect(all(isinstance(value, float) and not isinstance(value, bool) for value in norms),
           f"each norm should be a Python float (use .norm().item()), but the list holds {', '.join(sorted(kinds))}")


@check("guidance_norms: leaves its inputs unmodified", points=0.5)
def test_inputs_unmodified(guidance_norms, case):
    uncond, cond, _ = case
    norms_of(guidance_norms, uncond, cond, SCALES)
    (uncond_after, cond_after, scales_after), _ = guidance_norms.inputs_after_last_call
    expect(unchanged(uncond, uncond_after) and unchanged(cond, cond_after) and list(scales_after) == SCALES,
           "guidance_norms changed its inputs in place (e.g. noise_cond -= noise_uncond): compute new tensors")


@check("guidance_norms: each value is the L2 norm of apply_cfg at that scale, in order", points=1.5)
def test_norm_values(guidance_norms, case):
    uncond, cond, expected = case
    norms = norms_of(guidance_norms, uncond, cond, SCALES)
    expect(len(norms) == len(expected), "this check needs one value per scale first")
    for w, got, want in zip(SCALES, norms, expected):
        expect(isinstance(got, float) and math.isfinite(got), f"the value for w={w} is not a finite float")
        if abs(got - want ** 2) <= 1e-3 * max(1.0, want ** 2) and abs(want - 1) > 1e-2:
            expect(False, f"at w={w} you return the squared norm: take .norm(), not the sum of squares")
        expect(abs(got - want) <= 1e-4 * max(1.0, want),
               f"at w={w} the value is {got:.4f}, but the L2 norm of apply_cfg(noise_uncond, noise_cond, {w}) is "
               f"{want:.4f}: compute the norm of the guided prediction at each scale, in the order given")
