"""Hidden checks for Exercise 1: multi_head_cross_attention(layer, x, context, mask=None) -> (output, weights)."""
import numpy as np
import pytest
import torch

from autograder.grading.expectations import close, expect, same_dtype, tensor_pair
from text_to_image.reference import multi_head_cross_attention as reference

from autograder.assignments.text_conditioning_clip.checks.layers import cross_attention_layer, padding_mask, tensor

check = pytest.mark.check

# Text wider than the patches and N != M, as in the lesson's DiT; an odd head count; a square case
# (N == M, equal widths) where only the right roles of x and context give the right answer.
WIDE_TEXT = dict(seed=1, batch=2, patches=16, tokens=7, embed_dim=32, context_dim=48, heads=4)
ODD = dict(seed=2, batch=1, patches=9, tokens=5, embed_dim=24, context_dim=16, heads=3)
SQUARE = dict(seed=3, batch=2, patches=6, tokens=6, embed_dim=12, context_dim=12, heads=2)


def case(seed, batch, patches, tokens, embed_dim, context_dim, heads):
    rng = np.random.default_rng(seed)
    layer = cross_attention_layer(rng, embed_dim, context_dim, heads)
    return layer, tensor(rng, batch, patches, embed_dim), tensor(rng, batch, tokens, context_dim)


@pytest.fixture(scope="module")
def attend(student):
    function = student.function("multi_head_cross_attention")

    def run(layer, x, context, mask=None):
        result = function(layer, x, context, mask) if mask is not None else function(layer, x, context)
        output, weights = tensor_pair(result, "multi_head_cross_attention", "output", "weights")
        expect(bool(torch.isfinite(output).all()) and bool(torch.isfinite(weights).all()),
               "the output or the weights contain NaN or infinity")
        return output, weights
    return run


def slip_in_weights(weights, layer, x, context):
    """A message naming the usual slip that gives these weights, or a general one."""
    def scaled(scale):
        return reference(SimpleLayer(layer, scale), x.double(), context.double())[1]
    if weights.shape == scaled(layer.scale).shape:
        if close(weights, scaled(1.0), rtol=1e-4, atol=1e-5):
            return "the scores are not scaled: multiply Q K^T by layer.scale (1/sqrt(head_dim))"
        if close(weights, scaled((layer.num_heads * layer.head_dim) ** -0.5), rtol=1e-4, atol=1e-5):
            return ("the scores are scaled by 1/sqrt(embed_dim), the width of the whole layer: each head is "
                    "scaled by its own width, layer.scale = 1/sqrt(head_dim)")
        if torch.allclose(weights.double().sum(-2), torch.ones(1, dtype=torch.float64), atol=1e-4):
            return "the softmax runs over the patches: it must run over the text tokens (the last axis)"
    return ("the weights differ from softmax(Q K^T * layer.scale) per head, with Q = q_proj(x) and K = k_proj(context) "
            "split into layer.num_heads heads of layer.head_dim")


class SimpleLayer:
    """`layer` with another scale, for naming a slip."""

    def __init__(self, layer, scale):
        self.__dict__.update(vars(layer))
        self.scale = scale


@check("multi_head_cross_attention: output (B, N, embed_dim) and weights (B, heads, N, M) for any sizes", points=1,
       visible=True)
def test_shapes(attend):
    for sizes in (WIDE_TEXT, ODD):
        output, weights = attend(*case(**sizes))
        want_out = (sizes["batch"], sizes["patches"], sizes["embed_dim"])
        want_weights = (sizes["batch"], sizes["heads"], sizes["patches"], sizes["tokens"])
        expect(tuple(output.shape) == want_out,
               f"with {sizes['patches']} patches of width {sizes['embed_dim']} and text of width {sizes['context_dim']} "
               f"the output should have shape {want_out}, not {tuple(output.shape)}")
        expect(tuple(weights.shape) == want_weights,
               f"with {sizes['heads']} heads, {sizes['patches']} patches and {sizes['tokens']} tokens the weights should "
               f"have shape {want_weights}, not {tuple(weights.shape)}")


@check("multi_head_cross_attention: each patch's weights are a distribution over the text tokens", points=1,
       visible=True)
def test_rows(attend):
    _, weights = attend(*case(**WIDE_TEXT))
    expect(weights.dim() == 4 and weights.shape[-1] == WIDE_TEXT["tokens"], "the last axis should be the text tokens")
    sums = weights.double().sum(-1)
    expect(bool((weights >= 0).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-4),
           "each patch's weights should be non-negative and sum to 1 over the tokens: softmax over the last axis")


@check("multi_head_cross_attention: masked tokens get zero weight and change nothing", points=1, visible=True)
def test_mask(attend):
    layer, x, context = case(**WIDE_TEXT)
    mask = padding_mask([7, 4], WIDE_TEXT["tokens"])
    output, weights = attend(layer, x, context, mask)
    expect(tuple(weights.shape) == (2, WIDE_TEXT["heads"], WIDE_TEXT["patches"], WIDE_TEXT["tokens"]),
           f"with a mask the weights should still have shape (B, heads, N, M), not {tuple(weights.shape)}")
    expect(bool((weights[1, :, :, 4:] == 0).all()),
           "tokens where the mask is False (padding) get weight: set their scores to -inf before the softmax")
    garbage = context.clone()
    garbage[1, 4:] = 50.0
    changed_output, _ = attend(layer, x, garbage, mask)
    expect(close(changed_output[1], output[1], rtol=1e-4, atol=1e-5),
           "changing a padded (masked) token changes the output: masked tokens must not contribute")
    short_output, _ = attend(layer, x[1:], context[1:, :4])
    expect(close(output[1], short_output[0], rtol=1e-4, atol=1e-4),
           "a prompt with padding should give the output of the same prompt without the padded tokens")


@check("multi_head_cross_attention: per-head weights are softmax(Q K^T * scale) of the layer's projections",
       points=2)
def test_weights(attend):
    for sizes in (WIDE_TEXT, ODD):
        layer, x, context = case(**sizes)
        _, weights = attend(layer, x, context)
        _, expected = reference(layer, x.double(), context.double())
        if not close(weights, expected, rtol=1e-4, atol=1e-5):
            expect(False, slip_in_weights(weights, layer, x, context))
        same_dtype(weights, x.dtype, "the weights")


@check("multi_head_cross_attention: output is out_proj of the heads' weighted values, merged back", points=2)
def test_output(attend):
    for sizes in (WIDE_TEXT, ODD):
        layer, x, context = case(**sizes)
        output, weights = attend(layer, x, context)
        expected, expected_weights = reference(layer, x.double(), context.double())
        if close(output, expected, rtol=1e-4, atol=1e-5):
            same_dtype(output, x.dtype, "the output")
            continue
        expect(close(weights, expected_weights, rtol=1e-4, atol=1e-5),
               "the output is wrong because the weights are (see the weights check)")
        batch, heads, patches, _ = expected_weights.shape
        values = layer.v_proj(context.double()).view(batch, -1, heads, layer.head_dim).transpose(1, 2)
        merged = (expected_weights @ values).transpose(1, 2).reshape(batch, patches, -1)
        expect(not close(output, merged, rtol=1e-4, atol=1e-5),
               "the output misses the output projection: apply layer.out_proj after merging the heads")
        expect(False, "the output should be out_proj(weights @ V) with V = v_proj(context), the heads merged back in "
                      "order: transpose (B, heads, N, head_dim) to (B, N, heads, head_dim), then reshape")


@check("multi_head_cross_attention: queries come from the patches, keys and values from the text", points=1)
def test_roles(attend):
    layer, x, context = case(**SQUARE)
    output, _ = attend(layer, x, context)
    expected, _ = reference(layer, x.double(), context.double())
    expect(close(output, expected, rtol=1e-4, atol=1e-5),
           "with as many patches as tokens and equal widths the result is wrong: project the queries from x "
           "(q_proj) and the keys and values from context (k_proj, v_proj)")
    other, _ = attend(layer, x, context.flip(1) * 1.5 + 0.3)
    expect(not close(other, output), "changing the text does not change the output: K and V must come from context")
