"""Hidden checks for Exercise 3: drop_text(context, mask, null_context, null_mask, drop_prob, generator=None)."""
import numpy as np
import pytest
import torch

from autograder.assignments.text_conditioning_clip.checks.layers import padding_mask, tensor
from autograder.grading.expectations import expect, same_dtype, tensor_pair, unchanged
from autograder.sandbox.student_process import StudentError
from autograder.sandbox.values import GeneratorState, MetaTensor

check = pytest.mark.check

TOKENS, WIDTH = 6, 8


def captions(batch, seed=0):
    rng = np.random.default_rng(seed)
    context = tensor(rng, batch, TOKENS, WIDTH)
    mask = padding_mask(rng.integers(3, TOKENS + 1, batch).tolist(), TOKENS)
    null_context = tensor(rng, 1, TOKENS, WIDTH)
    null_mask = padding_mask([2], TOKENS)   # "" has its start and end tokens only
    return context, mask, null_context, null_mask


@pytest.fixture(scope="module")
def drop(student):
    function = student.function("drop_text")

    def run(context, mask, null_context, null_mask, drop_prob):
        result = function(context, mask, null_context, null_mask, drop_prob)
        new_context, new_mask = tensor_pair(result, "drop_text", "context", "mask")
        expect(new_context.shape == context.shape and new_mask.shape == mask.shape,
               f"the context and mask keep their shapes {tuple(context.shape)} and {tuple(mask.shape)}, not "
               f"{tuple(new_context.shape)} and {tuple(new_mask.shape)}")
        return new_context, new_mask, function.inputs_after_last_call[0]
    return run


def null_rows(context, null_context):
    return torch.tensor([torch.equal(row, null_context[0]) for row in context])


@check("drop_text: drop_prob = 0 keeps every caption, drop_prob = 1 replaces every one by the null text", points=1,
       visible=True)
def test_extremes(drop):
    context, mask, null_context, null_mask = captions(16)
    kept, kept_mask, _ = drop(context, mask, null_context, null_mask, 0.0)
    expect(torch.equal(kept, context) and torch.equal(kept_mask, mask), "with drop_prob = 0 nothing may change")
    dropped, _, _ = drop(context, mask, null_context, null_mask, 1.0)
    expect(bool(null_rows(dropped, null_context).all()),
           "with drop_prob = 1 every caption should be exactly the null text's embedding")


@check("drop_text: a dropped caption takes the null text's embedding and its mask, the others stay as they were",
       points=1, visible=True)
def test_rows_and_masks(drop):
    context, mask, null_context, null_mask = captions(400, seed=1)
    new_context, new_mask, _ = drop(context, mask, null_context, null_mask, 0.5)
    is_null = null_rows(new_context, null_context)
    kept = torch.tensor([torch.equal(a, b) for a, b in zip(new_context, context)])
    expect(bool((is_null | kept).all()), "every caption should be either kept as it was or replaced by the null text, "
                                         "row by row (no mixing or scaling)")
    expect(0 < int(is_null.sum()) < 400, "with drop_prob = 0.5, some captions should be dropped and some kept")
    expect(bool((new_mask[is_null] == null_mask[0]).all()),
           "a dropped caption keeps its own mask: replace the mask by the null text's mask too, or cross-attention "
           "still reads padding positions of the null text as real tokens")
    expect(bool((new_mask[kept & ~is_null] == mask[kept & ~is_null]).all()), "a kept caption should keep its own mask")


@check("drop_text: each caption is dropped on its own with probability drop_prob", points=0.5)
def test_rate(drop):
    for drop_prob, seed in ((0.1, 2), (0.3, 3)):
        context, mask, null_context, null_mask = captions(4000, seed=seed)
        new_context, _, _ = drop(context, mask, null_context, null_mask, drop_prob)
        share = null_rows(new_context, null_context).float().mean().item()
        spread = 5 * (drop_prob * (1 - drop_prob) / 4000) ** 0.5
        expect(share not in (0.0, 1.0),
               f"with drop_prob = {drop_prob} the whole batch is dropped or kept at once: draw one number per caption")
        expect(abs(share - drop_prob) < spread,
               f"with drop_prob = {drop_prob} a share of {share:.3f} of 4000 captions was dropped: expected about "
               f"{drop_prob} (drop when torch.rand(B) < drop_prob)")


@check("drop_text: the generator it is given decides which captions are dropped", points=0.5)
def test_generator_decides(student):
    function = student.function("drop_text")
    context, mask, null_context, null_mask = captions(64, seed=5)

    def dropped(seed):
        result = function(context, mask, null_context, null_mask, 0.5, generator=GeneratorState.seeded(seed))
        new_context, _ = tensor_pair(result, "drop_text", "context", "mask")
        expect(new_context.shape == context.shape, f"the context keeps its shape {tuple(context.shape)}")
        return null_rows(new_context, null_context)

    first, again, other = dropped(80512), dropped(80512), dropped(61)
    expect(torch.equal(first, again), "given generators in the same state twice, drop_text dropped different "
                                      "captions: draw with the generator it is given, e.g. torch.rand(B, "
                                      "generator=generator), and no other source of randomness")
    expect(not torch.equal(first, other), "the result does not change when the generator changes: does your "
                                          "function use the generator it is given?")


@check("drop_text: what it makes follows its inputs' device (as on a GPU)", points=0.5)
def test_follows_the_device(student, drop):
    # On a GPU, torch.rand(B) without a device is a CPU tensor, and mixing it with the inputs fails. Where no GPU
    # is, PyTorch's meta device stands in for one: a tensor left on the CPU fails there in the same way.
    context, mask, null_context, null_mask = captions(8, seed=6)
    dropped, _, _ = drop(context, mask, null_context, null_mask, 1.0)
    expect(bool(null_rows(dropped, null_context).all()), "this check needs drop_prob = 1 to drop every caption first")
    function = student.function("drop_text")
    inputs = (MetaTensor((5, TOKENS, WIDTH)), MetaTensor((5, TOKENS), "bool"), MetaTensor((1, TOKENS, WIDTH)),
              MetaTensor((1, TOKENS), "bool"))
    try:
        result = function(*inputs, 0.5, generator=GeneratorState.seeded(3))
    except StudentError as error:
        first = str(error).strip().splitlines()[-1][:200]
        expect(False, "with its inputs on a GPU, drop_text would fail: a tensor it makes stays on the CPU (move "
                      f"what torch.rand gives to context.device) [{first}]")
    expect(isinstance(result, (tuple, list)) and len(result) == 2
           and all(isinstance(part, MetaTensor) for part in result),
           "with its inputs on a GPU, drop_text's results should stay on that device")


@check("drop_text: the inputs are left as they were", points=0.5)
def test_inputs_unchanged(drop):
    context, mask, null_context, null_mask = captions(64, seed=4)
    new_context, new_mask, after = drop(context, mask, null_context, null_mask, 0.5)
    expect(unchanged([context, mask, null_context, null_mask], after[:4]),
           "drop_text changed its inputs in place: build new tensors (torch.where) instead of writing into context")
    same_dtype(new_context, context.dtype, "the returned context")
    same_dtype(new_mask, mask.dtype, "the returned mask")
