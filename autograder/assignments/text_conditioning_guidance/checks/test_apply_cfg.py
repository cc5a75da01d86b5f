"""Hidden checks for Exercise 3: apply_cfg(noise_uncond, noise_cond, guidance_scale)."""
import pytest
import torch

from autograder.grading.expectations import as_tensor, close, expect, same_dtype, unchanged

check = pytest.mark.check


def predictions(seed, shape=(16,), dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    uncond = torch.randn(shape, generator=generator) * 0.5
    cond = uncond + 0.1 * torch.randn(shape, generator=generator)
    return uncond.to(dtype), cond.to(dtype)


def guided(apply_cfg, uncond, cond, w):
    return as_tensor(apply_cfg(uncond, cond, w), f"apply_cfg(..., guidance_scale={w})'s result")


def expected(uncond, cond, w):
    uncond, cond = uncond.double(), cond.double()
    return uncond + w * (cond - uncond)


@pytest.fixture(scope="module")
def apply_cfg(student):
    return student.function("apply_cfg")


@check("apply_cfg: w=0 returns the unconditional prediction", points=1, visible=True)
def test_zero_scale(apply_cfg):
    uncond, cond = predictions(1)
    result = guided(apply_cfg, uncond, cond, 0.0)
    expect(close(result, uncond), "with guidance_scale=0 the text direction is scaled by 0, so apply_cfg must return "
                                  "noise_uncond: start the formula from the unconditional prediction")


@check("apply_cfg: w=1 returns the conditional prediction", points=1, visible=True)
def test_unit_scale(apply_cfg):
    uncond, cond = predictions(2)
    result = guided(apply_cfg, uncond, cond, 1.0)
    if close(result, cond + (cond - uncond)):
        expect(False, "with guidance_scale=1 you return noise_cond plus the text direction, i.e. the text effect "
                      "twice: the formula starts from noise_uncond, not noise_cond")
    expect(close(result, cond), "with guidance_scale=1 apply_cfg must return noise_cond exactly")


@check("apply_cfg: the formula holds at w = 7.5 and w = 15", points=1)
def test_typical_scales(apply_cfg):
    uncond, cond = predictions(3)
    for w in (7.5, 15.0):
        expect(close(guided(apply_cfg, uncond, cond, w), expected(uncond, cond, w)),
               f"at guidance_scale={w} the result is not noise_uncond + w * (noise_cond - noise_uncond)")


@check("apply_cfg: the formula holds at fractional and negative scales", points=1)
def test_unusual_scales(apply_cfg):
    uncond, cond = predictions(4)
    for w in (0.37, 2.5, 11.25, -1.5):
        expect(close(guided(apply_cfg, uncond, cond, w), expected(uncond, cond, w)),
               f"at guidance_scale={w} the result is wrong: use the scale as given (no rounding, clamping or "
               "special cases)")


@check("apply_cfg: works on a batch of 4-D latents and keeps their shape", points=1)
def test_batched_latents(apply_cfg):
    uncond, cond = predictions(5, shape=(2, 4, 8, 8))
    result = guided(apply_cfg, uncond, cond, 7.5)
    expect(tuple(result.shape) == (2, 4, 8, 8),
           f"for inputs of shape (2, 4, 8, 8) the result has shape {tuple(result.shape)}: do not flatten or reduce")
    expect(close(result, expected(uncond, cond, 7.5)), "on a batch of 4-D latents the result is wrong")


@check("apply_cfg: works in float16 and float32", points=1)
def test_dtypes(apply_cfg):
    for dtype, tolerance in ((torch.float32, 1e-5), (torch.float16, 2e-2)):
        uncond, cond = predictions(6, shape=(3, 5), dtype=dtype)
        result = guided(apply_cfg, uncond, cond, 3.0)
        expect(tuple(result.shape) == (3, 5), f"for {dtype} inputs of shape (3, 5) the result has the wrong shape")
        same_dtype(result, dtype, "the result")
        expect(close(result, expected(uncond, cond, 3.0), rtol=tolerance, atol=tolerance),
               f"for {str(dtype).removeprefix('torch.')} inputs the result is wrong")


@check("apply_cfg: leaves its inputs unmodified", points=1)
def test_inputs_unmodified(apply_cfg):
    uncond, cond = predictions(7)
    expect(close(guided(apply_cfg, uncond, cond, 7.5), expected(uncond, cond, 7.5)),
           "this check needs a correct result at guidance_scale=7.5 first")
    (uncond_after, cond_after, _), _ = apply_cfg.inputs_after_last_call
    expect(unchanged(uncond, uncond_after) and unchanged(cond, cond_after),
           "apply_cfg modified noise_uncond or noise_cond in place (e.g. with += or .mul_): return a new tensor")
