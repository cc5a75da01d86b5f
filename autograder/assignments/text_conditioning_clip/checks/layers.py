"""What Lesson 2's checks hand to the student's code: a CrossAttention-like layer built from weights the
grader chose (its projections cross the sandbox as torch.nn.Linear), and the inputs for it."""
import math
from types import SimpleNamespace

import numpy as np
import torch

from autograder.sandbox.values import Linear


def cross_attention_layer(rng, embed_dim, context_dim, heads):
    def linear(out_features, in_features):
        bound = 1 / math.sqrt(in_features)
        return Linear(rng.uniform(-bound, bound, (out_features, in_features)).astype(np.float32),
                      rng.uniform(-bound, bound, out_features).astype(np.float32))

    head_dim = embed_dim // heads
    return SimpleNamespace(q_proj=linear(embed_dim, embed_dim), k_proj=linear(embed_dim, context_dim),
                           v_proj=linear(embed_dim, context_dim), out_proj=linear(embed_dim, embed_dim),
                           num_heads=heads, head_dim=head_dim, scale=head_dim ** -0.5)


def tensor(rng, *shape, scale=1.0):
    return torch.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32))


def padding_mask(lengths, tokens):
    """(B, M) True on the first `length` tokens of each row."""
    return torch.arange(tokens)[None, :] < torch.tensor(lengths)[:, None]
