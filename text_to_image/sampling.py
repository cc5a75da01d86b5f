"""Sampling from prompts: the text and null-text embeddings are prepared here, and the guided Euler
steps from t = 1 (noise) to t = 0 (image) are Exercise 4 of the notebook (exercises.py)."""
from __future__ import annotations

import torch

from .exercises import implementation
from .text_encoder import trim_padding


@torch.no_grad()
def sample_text_conditional(model, text_encoder, prompts, image_shape, num_steps=50, cfg_scale=7.5, device=None,
                            generator=None):
    """Images (B, *image_shape) in the model's data range for a list of prompts.

    Each step evaluates v = v_u + w (v_c - v_u), the null text being the encoder's embedding of "",
    and moves x <- x - dt * v.
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    batch = len(prompts)
    context, mask = text_encoder(prompts)
    null_context, null_mask = text_encoder([""] * batch)
    # Both halves trimmed to the same length: the padding after the longest prompt changes nothing.
    both_context, both_mask = trim_padding(torch.cat([context, null_context]).to(device),
                                           torch.cat([mask, null_mask]).to(device))
    noise = torch.randn((batch, *image_shape), generator=generator).to(device)
    model.eval()
    return implementation("euler_cfg_sample")(model, noise, both_context[:batch], both_mask[:batch],
                                              both_context[batch:], both_mask[batch:], num_steps, cfg_scale)
