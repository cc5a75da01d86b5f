"""Hidden checks for Lesson 2's exercise: cross_attention_weights(layer, x, context) -> (B, heads, N, M).

`layer` reaches the student's code as an object with the attributes of text_to_image's CrossAttention
that the exercise uses (q_proj, k_proj, v_proj, out_proj as torch.nn.Linear, num_heads, head_dim,
scale), built from weights the grader chose; the reference is computed here.
"""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from autograder.expectations import as_tensor, close, expect
from autograder.sandbox import Linear

check = pytest.mark.check


def make_case(seed, batch, patches, tokens, embed_dim, context_dim, heads):
    rng = np.random.default_rng(seed)

    def linear(out_features, in_features):
        bound = 1 / math.sqrt(in_features)
        return Linear(rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32),
                      rng.uniform(-bound, bound, out_features).astype(np.float32))

    head_dim = embed_dim // heads
    layer = SimpleNamespace(q_proj=linear(embed_dim, embed_dim), k_proj=linear(embed_dim, context_dim),
                            v_proj=linear(embed_dim, context_dim), out_proj=linear(embed_dim, embed_dim),
                            num_heads=heads, head_dim=head_dim, scale=head_dim ** -0.5)
    x = torch.from_numpy(rng.standard_normal((batch, patches, embed_dim)).astype(np.float32))
    context = torch.from_numpy(rng.standard_normal((batch, tokens, context_dim)).astype(np.float32))
    return layer, x, context


def reference(layer, x, context, scale=None):
    def heads(t):
        return t.double().view(t.shape[0], t.shape[1], layer.num_heads, layer.head_dim).transpose(1, 2)
    q, k = heads(layer.q_proj(x)), heads(layer.k_proj(context))
    return torch.softmax(q @ k.transpose(-2, -1) * (layer.scale if scale is None else scale), dim=-1)


# Context wider than the patches and N != M, as in the lesson's DiT; and a small odd-sized case.
CASES = [dict(seed=1, batch=2, patches=16, tokens=7, embed_dim=32, context_dim=48, heads=4),
         dict(seed=2, batch=1, patches=9, tokens=5, embed_dim=24, context_dim=16, heads=3)]


@pytest.fixture(scope="module")
def weights_of(student):
    function = student.function("cross_attention_weights")

    def run(case):
        layer, x, context = make_case(**case)
        return as_tensor(function(layer, x, context), "cross_attention_weights(...)'s result"), (layer, x, context)
    return run


@check("cross_attention_weights: shape (batch, heads, patches, tokens) for any sizes", points=1)
def test_shape(weights_of):
    for case in CASES:
        weights, _ = weights_of(case)
        want = (case["batch"], case["heads"], case["patches"], case["tokens"])
        expect(tuple(weights.shape) == want, f"for {case['batch']} images of {case['patches']} patches, "
               f"{case['tokens']} text tokens and {case['heads']} heads the weights have shape "
               f"{tuple(weights.shape)}; expected {want}")


@check("cross_attention_weights: each row is a distribution over the text tokens", points=1)
def test_rows(weights_of):
    weights, _ = weights_of(CASES[0])
    expect(bool(torch.isfinite(weights).all()), "the weights contain NaN or infinity")
    expect(weights.shape[-1] == CASES[0]["tokens"], "the last axis should be the text tokens")
    expect(bool((weights >= 0).all()) and torch.allclose(weights.double().sum(-1), torch.ones(1, dtype=torch.float64),
                                                        atol=1e-4),
           "every row over the text tokens should be non-negative and sum to 1: softmax over the last axis")


@check("cross_attention_weights: per-head weights equal softmax(Q K^T * scale) of the layer's projections", points=2)
def test_values(weights_of):
    for case in CASES:
        weights, (layer, x, context) = weights_of(case)
        expected = reference(layer, x, context)
        if close(weights, expected, rtol=1e-4, atol=1e-5):
            continue
        if close(weights, reference(layer, x, context, scale=1.0), rtol=1e-4, atol=1e-5):
            expect(False, "the scores are not scaled: multiply Q K^T by layer.scale (1/sqrt(head_dim))")
        if close(weights, reference(layer, x, context, scale=(layer.num_heads * layer.head_dim) ** -0.5),
                 rtol=1e-4, atol=1e-5):
            expect(False, "the scores are scaled by 1/sqrt(embed_dim): use the per-head width, layer.scale")
        expect(False, "the weights differ from the layer's own: project x with q_proj and context with k_proj, "
                      "split into layer.num_heads heads of layer.head_dim, and softmax over the tokens")
