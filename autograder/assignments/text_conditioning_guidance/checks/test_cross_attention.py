"""Hidden checks for Exercise 1: cross_attention(x_spatial, x_text, W_Q, W_K, W_V) -> (output, weights)."""
import math

import numpy as np
import pytest
import torch

from autograder.grading.expectations import CheckFailed, close, describe, expect, same_dtype, tensor_pair, unchanged
from autograder.sandbox.values import Linear

check = pytest.mark.check


def make_case(seed, n_queries, d_spatial, n_tokens, d_text, d_k, d_v):
    rng = np.random.default_rng(seed)
    def matrix(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)
    return {
        "x_spatial": torch.from_numpy(matrix(n_queries, d_spatial)),
        "x_text": torch.from_numpy(matrix(n_tokens, d_text)),
        "W_Q": Linear(matrix(d_k, d_spatial, scale=1 / math.sqrt(d_spatial))),
        "W_K": Linear(matrix(d_k, d_text, scale=1 / math.sqrt(d_text))),
        "W_V": Linear(matrix(d_v, d_text, scale=1 / math.sqrt(d_text))),
    }


LESSON = dict(n_queries=16, d_spatial=32, n_tokens=6, d_text=32, d_k=32, d_v=32)
# Like a U-Net: text wider than the features, projections that change the width (d_v = d_k here: the
# case d_v != d_k has a check of its own, so that one generality slip costs one check).
UNET_LIKE = dict(n_queries=10, d_spatial=24, n_tokens=7, d_text=40, d_k=16, d_v=16)
# As many queries as tokens, so a square weight matrix alone cannot tell where K came from.
SQUARE = dict(n_queries=8, d_spatial=12, n_tokens=8, d_text=28, d_k=16, d_v=16)
# Values wider, then narrower, than the keys.
WIDER_VALUES = dict(n_queries=9, d_spatial=24, n_tokens=5, d_text=40, d_k=8, d_v=20)
NARROWER_VALUES = dict(n_queries=6, d_spatial=20, n_tokens=11, d_text=12, d_k=24, d_v=4)


def reference(case, scale=None):
    q = case["W_Q"](case["x_spatial"]).double()
    k = case["W_K"](case["x_text"]).double()
    v = case["W_V"](case["x_text"]).double()
    scale = 1 / math.sqrt(k.shape[-1]) if scale is None else scale
    weights = torch.softmax(q @ k.T * scale, dim=-1)
    return weights @ v, weights


def run(cross_attention, case):
    result = cross_attention(case["x_spatial"], case["x_text"], case["W_Q"], case["W_K"], case["W_V"])
    output, weights = tensor_pair(result, "cross_attention", "output", "attn_weights")
    expect(bool(torch.isfinite(output).all()) and bool(torch.isfinite(weights).all()),
           "the output or the weights contain NaN or infinity")
    return output, weights


@pytest.fixture(scope="module")
def cross_attention(student):
    return student.function("cross_attention")


@check("cross_attention: returns (output, attention weights) as two tensors", points=1)
def test_returns_pair(cross_attention):
    output, weights = run(cross_attention, make_case(1, **LESSON))
    same_dtype(output, torch.float32, "the output")
    same_dtype(weights, torch.float32, "the weights")


@check("cross_attention: weights have shape (queries, text tokens) for any sizes", points=1, visible=True)
def test_weight_shape(cross_attention):
    for seed, sizes in ((2, LESSON), (3, UNET_LIKE)):
        _, weights = run(cross_attention, make_case(seed, **sizes))
        expected = (sizes["n_queries"], sizes["n_tokens"])
        expect(tuple(weights.shape) == expected,
               f"with {sizes['n_queries']} queries and {sizes['n_tokens']} text tokens the weights should have shape "
               f"{expected}, not {tuple(weights.shape)}: one row per spatial location, one column per token")


@check("cross_attention: each row of weights sums to 1 with no negative weight", points=1, visible=True)
def test_rows_are_distributions(cross_attention):
    for seed, sizes in ((4, LESSON), (5, UNET_LIKE)):
        _, weights = run(cross_attention, make_case(seed, **sizes))
        expect(weights.dim() == 2 and weights.shape[0] == sizes["n_queries"],
               f"expected one row of weights per query, got {describe(weights)}")
        sums = weights.double().sum(dim=-1)
        expect(bool(torch.isfinite(sums).all()), "the weights contain NaN or infinity")
        expect(bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-4)),
               "rows of the weights do not sum to 1: apply the softmax over the text tokens (the last axis)")
        expect(bool((weights >= 0).all()), "some weights are negative: the weights must come out of a softmax")


@check("cross_attention: output equals weights @ V with one row per query", points=1)
def test_output_is_weighted_values(cross_attention):
    case = make_case(6, **UNET_LIKE)
    output, weights = run(cross_attention, case)
    expect(tuple(output.shape) == (UNET_LIKE["n_queries"], UNET_LIKE["d_v"]),
           f"the output should have shape (queries, d_v) = {(UNET_LIKE['n_queries'], UNET_LIKE['d_v'])}, "
           f"not {tuple(output.shape)}; are the returns in the order (output, attn_weights)?")
    values = case["W_V"](case["x_text"])
    if tuple(weights.shape) == (UNET_LIKE["n_queries"], UNET_LIKE["n_tokens"]):
        expect(close(output, weights.double() @ values.double()),
               "the output is not attn_weights @ V, with V = W_V(x_text): weight the values, not the keys or queries")


@check("cross_attention: keys and values come from the text, not the spatial input", points=2)
def test_keys_values_from_text(cross_attention):
    case = make_case(7, **SQUARE)
    output, weights = run(cross_attention, case)
    expected_output, expected_weights = reference(case)
    expect(close(weights, expected_weights, rtol=1e-3, atol=1e-5),
           "the weights do not match softmax(Q K^T / sqrt(d_k)) with K = W_K(x_text): project the keys from the text")
    expect(close(output, expected_output, rtol=1e-3, atol=1e-5),
           "the output does not match weights @ V with V = W_V(x_text): project the values from the text")
    other_text = dict(case, x_text=case["x_text"].flip(0) * 1.5 + 0.3)
    changed_output, _ = run(cross_attention, other_text)
    expect(not close(changed_output, output), "changing the text does not change the output: K and V must use x_text")


@check("cross_attention: scores are scaled by 1/sqrt(d_k)", points=1)
def test_scaled_scores(cross_attention):
    case = make_case(8, **UNET_LIKE)
    _, weights = run(cross_attention, case)
    _, expected = reference(case)
    if close(weights, expected, rtol=1e-3, atol=1e-5):
        return
    d_k = UNET_LIKE["d_k"]
    hints = {1.0: "the scores are not scaled at all", 1 / d_k: "the scores are divided by d_k instead of sqrt(d_k)",
             1 / math.sqrt(UNET_LIKE["d_spatial"]): "the scores are scaled with the input width, not with d_k "
                                                   "(the width of the projected keys)"}
    for scale, hint in hints.items():
        if close(weights, reference(case, scale=scale)[1], rtol=1e-3, atol=1e-5):
            raise CheckFailed(f"{hint}: divide Q K^T by sqrt(d_k) before the softmax")
    expect(False, "the weights do not equal softmax(Q K^T / sqrt(d_k)): check the scaling and the softmax axis")


@check("cross_attention: matches a trusted implementation on random inputs", points=1)
def test_matches_reference(cross_attention):
    for seed, sizes in ((9, LESSON), (10, UNET_LIKE), (11, dict(n_queries=3, d_spatial=5, n_tokens=11,
                                                                d_text=9, d_k=4, d_v=4))):
        case = make_case(seed, **sizes)
        output, weights = run(cross_attention, case)
        expected_output, expected_weights = reference(case)
        expect(close(weights, expected_weights) and close(output, expected_output),
               f"on random inputs with {sizes['n_queries']} queries and {sizes['n_tokens']} tokens the result differs "
               "from softmax(Q K^T / sqrt(d_k)) V (within 1e-4)")


@check("cross_attention: works when the values are wider or narrower than the keys (d_v != d_k)", points=1)
def test_value_width_differs_from_key_width(cross_attention):
    for seed, sizes in ((13, WIDER_VALUES), (14, NARROWER_VALUES)):
        case = make_case(seed, **sizes)
        output, weights = run(cross_attention, case)
        d_k, d_v = sizes["d_k"], sizes["d_v"]
        expect(tuple(output.shape) == (sizes["n_queries"], d_v),
               f"with d_k={d_k} and d_v={d_v} the output should have shape (queries, d_v) = "
               f"{(sizes['n_queries'], d_v)}, not {tuple(output.shape)}: the output has the values' width")
        expected_output, expected_weights = reference(case)
        if close(weights, expected_weights, rtol=1e-3, atol=1e-5) and close(output, expected_output, rtol=1e-3,
                                                                            atol=1e-5):
            continue
        if close(weights, reference(case, scale=1 / math.sqrt(d_v))[1], rtol=1e-3, atol=1e-5):
            raise CheckFailed(f"with d_k={d_k} and d_v={d_v} the scores are scaled by 1/sqrt(d_v), the values' "
                              "width: scale by 1/sqrt(d_k), the width of the keys")
        expect(False, f"with d_k={d_k} and d_v={d_v} the result differs from softmax(Q K^T / sqrt(d_k)) V: "
                      "nothing in the formula may assume that V is as wide as K")


@check("cross_attention: leaves its inputs unmodified", points=1)
def test_inputs_unmodified(cross_attention):
    case = make_case(12, **UNET_LIKE)
    output, weights = run(cross_attention, case)
    expected_output, expected_weights = reference(case)
    expect(close(output, expected_output) and close(weights, expected_weights),
           "this check needs a correct result on its inputs first")
    args_after, _ = cross_attention.inputs_after_last_call
    names = ["x_spatial", "x_text", "W_Q", "W_K", "W_V"]
    for name, after in zip(names, args_after):
        expect(unchanged(case[name], after), f"cross_attention modified its input {name} in place: work on new tensors")
