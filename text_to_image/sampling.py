"""Euler sampling from t = 1 (noise) to t = 0 (image) with classifier-free guidance on the text."""
from __future__ import annotations

import torch

from .text_encoder import trim_padding


@torch.no_grad()
def sample_text_conditional(model, text_encoder, prompts, image_shape, num_steps=50, cfg_scale=7.5, device=None,
                            generator=None, batched_cfg=True):
    """Images (B, *image_shape) in the model's data range for a list of prompts.

    Each step evaluates v = v_u + w (v_c - v_u), the null text being the encoder's embedding of "",
    and moves x <- x - dt * v. With batched_cfg the conditional and unconditional predictions come
    from one forward pass over a doubled batch; otherwise from two passes (kept for comparison).
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    batch = len(prompts)
    context, mask = text_encoder(prompts)
    null_context, null_mask = text_encoder([""] * batch)
    context, mask, null_context, null_mask = (v.to(device) for v in (context, mask, null_context, null_mask))
    x = torch.randn((batch, *image_shape), generator=generator).to(device)
    both_context, both_mask = trim_padding(torch.cat([context, null_context]), torch.cat([mask, null_mask]))
    context, mask = both_context[:batch], both_mask[:batch]
    null_context, null_mask = both_context[batch:], both_mask[batch:]
    dt = 1.0 / num_steps
    model.eval()
    for step in range(num_steps):
        t = torch.full((batch,), 1.0 - step * dt, device=device)
        if batched_cfg:
            v_cond, v_uncond = model(torch.cat([x, x]), torch.cat([t, t]), both_context, both_mask).chunk(2)
        else:
            v_cond = model(x, t, context, mask)
            v_uncond = model(x, t, null_context, null_mask)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
