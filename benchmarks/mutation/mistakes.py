"""Plausible student mistakes for each graded function, written the way students get them wrong: the harness
grades each (MISTAKES) and expects its function to lose points; CORRECT_IDIOMS, correct code in the styles of
well-known code bases, must keep full marks; GPU_ONLY_MISTAKES go wrong only when the tensors live on a GPU.
"""
from __future__ import annotations

# Lesson 1 (text_conditioning_guidance) cells may use torch, math, F and np, which its notebook imports.
# Lesson 2 (text_conditioning_clip) imports only torch and np, so its sources import math or F themselves.

CROSS_ATTENTION = {
    "softmax_over_queries_transposed": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    scores = k @ q.T / math.sqrt(k.shape[-1])   # (tokens, queries)
    weights = torch.softmax(scores, dim=-1).T
    return weights @ v, weights
''',
    "scaled_by_spatial_width": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    d = x_spatial.shape[-1]
    weights = torch.softmax(q @ k.T / math.sqrt(d), dim=-1)
    return weights @ v, weights
''',
    "scaled_by_token_count": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    d_k = k.shape[0]
    weights = torch.softmax(q @ k.T / math.sqrt(d_k), dim=-1)
    return weights @ v, weights
''',
    "scaled_after_softmax": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.softmax(q @ k.T, dim=-1) / math.sqrt(k.shape[-1])
    return weights @ v, weights
''',
    "multiplied_by_sqrt_d_k": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.softmax(q @ k.T * math.sqrt(k.shape[-1]), dim=-1)
    return weights @ v, weights
''',
    "values_not_projected": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k = W_Q(x_spatial), W_K(x_text)
    weights = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return weights @ x_text, weights
''',
    "log_softmax_weights": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = F.log_softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return weights @ v, weights
''',
    "sigmoid_weights": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.sigmoid(q @ k.T / math.sqrt(k.shape[-1]))
    return weights @ v, weights
''',
    "manual_softmax_without_keepdim": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    scores = q @ k.T / math.sqrt(k.shape[-1])
    e = torch.exp(scores - scores.max())
    weights = e / e.sum(dim=-1)
    return weights @ v, weights
''',
    "returns_raw_scores": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    scores = q @ k.T / math.sqrt(k.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, scores
''',
    "attention_dropout_left_on": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    weights = F.dropout(weights, p=0.1)
    return weights @ v, weights
''',
    "output_transposed": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return v.T @ weights.T, weights
''',
    "scales_input_in_place": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    d_k = W_K.out_features
    x_spatial /= math.sqrt(d_k)   # scale the queries once, up front
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.softmax(q @ k.T, dim=-1)
    return weights @ v, weights
''',
    "weights_as_numpy": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return weights @ v, weights.detach().numpy()
''',
    "half_precision_scores": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    scores = (q.half() @ k.half().T) / math.sqrt(k.shape[-1])   # fp16 like the pipeline
    weights = torch.softmax(scores, dim=-1).float()
    return weights @ v, weights
''',
    "double_precision_result": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial).double(), W_K(x_text).double(), W_V(x_text).double()
    weights = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return weights @ v, weights
''',
}

APPLY_CFG = {
    "direction_reversed": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + guidance_scale * (noise_uncond - noise_cond)
''',
    "cond_times_scale_only": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return guidance_scale * noise_cond
''',
    "parentheses_around_base": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return (noise_uncond + guidance_scale) * (noise_cond - noise_uncond)
''',
    "weights_swapped": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    w = guidance_scale
    return (1 - w) * noise_cond + w * noise_uncond
''',
    "normalised_by_one_plus_w": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    guided = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
    return guided / (1 + guidance_scale)   # keep the magnitude in range
''',
    "add_in_place_on_uncond": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond.add_(guidance_scale * (noise_cond - noise_uncond))
''',
    "alias_then_in_place": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    guided = noise_uncond
    guided += guidance_scale * (noise_cond - noise_uncond)
    return guided
''',
    "lerp_arguments_swapped": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return torch.lerp(noise_cond, noise_uncond, guidance_scale)
''',
    "direction_only": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return guidance_scale * (noise_cond - noise_uncond)
''',
    "scale_minus_one_from_uncond": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + (guidance_scale - 1) * (noise_cond - noise_uncond)
''',
    "truncated_scale": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + int(guidance_scale) * (noise_cond - noise_uncond)
''',
    "skips_guidance_at_or_below_one": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    if guidance_scale <= 1.0:   # as diffusers' do_classifier_free_guidance
        return noise_cond
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond)
''',
    "absolute_scale": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + abs(guidance_scale) * (noise_cond - noise_uncond)
''',
    "returns_numpy": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    guided = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
    return guided.detach().cpu().numpy()
''',
    "computed_in_half": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    uncond, cond = noise_uncond.half(), noise_cond.half()
    return (uncond + guidance_scale * (cond - uncond)).to(noise_uncond.dtype)
''',
    "returns_double": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    uncond, cond = noise_uncond.double(), noise_cond.double()
    return uncond + guidance_scale * (cond - uncond)
''',
    "flattened": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    uncond, cond = noise_uncond.flatten(), noise_cond.flatten()
    return uncond + guidance_scale * (cond - uncond)
''',
}

GUIDANCE_NORMS = {
    "numpy_array_result": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return np.array([apply_cfg(noise_uncond, noise_cond, w).norm().item() for w in guidance_scales])
''',
    "spectral_norm_via_ord_2": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [float(np.linalg.norm(apply_cfg(noise_uncond, noise_cond, w).numpy(), ord=2)) for w in guidance_scales]
''',
    "l1_norm": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, w).norm(p=1).item() for w in guidance_scales]
''',
    "rms_instead_of_norm": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, w).pow(2).mean().sqrt().item() for w in guidance_scales]
''',
    "mean_of_row_norms": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, w).norm(dim=-1).mean().item() for w in guidance_scales]
''',
    "per_image_norm_lists": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, w).flatten(1).norm(dim=1).tolist() for w in guidance_scales]
''',
    "truncated_scales": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, int(w)).norm().item() for w in guidance_scales]
''',
    "skips_first_scale": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    norms = []
    for w in guidance_scales[1:]:
        norms.append(apply_cfg(noise_uncond, noise_cond, w).norm().item())
    return norms
''',
    "sorted_scales": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, w).norm().item() for w in sorted(guidance_scales)]
''',
    "single_tensor_result": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return torch.tensor([apply_cfg(noise_uncond, noise_cond, w).norm().item() for w in guidance_scales])
''',
    "returns_generator_expression": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return (apply_cfg(noise_uncond, noise_cond, w).norm().item() for w in guidance_scales)
''',
    "cond_times_scale_norm": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [(w * noise_cond).norm().item() for w in guidance_scales]
''',
    "rounded_for_printing": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [round(apply_cfg(noise_uncond, noise_cond, w).norm().item(), 2) for w in guidance_scales]
''',
    "std_as_magnitude": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, w).std().item() for w in guidance_scales]
''',
    "max_abs_as_magnitude": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, w).abs().max().item() for w in guidance_scales]
''',
    "direction_subtracted_in_place": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    noise_cond -= noise_uncond   # the text direction, computed once
    return [(noise_uncond + w * noise_cond).norm().item() for w in guidance_scales]
''',
}

GENERATE_GUIDANCE_SWEEP = {
    "seeds_global_rng_each_scale": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        torch.manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps).images[0])
    return images
''',
    "seeds_global_rng_once": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    torch.manual_seed(seed)
    images = []
    for w in guidance_scales:
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps).images[0])
    return images
''',
    "hard_codes_seed_42": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(42)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
''',
    "steps_not_passed": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, generator=generator).images[0])
    return images
''',
    "hard_codes_lesson_scales": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in [1, 3, 7.5, 12, 20]:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
''',
    "hard_codes_prompt": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe("a photograph of an astronaut riding a horse", guidance_scale=w,
                           num_inference_steps=num_inference_steps, generator=generator).images[0])
    return images
''',
    "skips_first_scale": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales[1:]:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
''',
    "skips_last_scale": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for i in range(len(guidance_scales) - 1):
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=guidance_scales[i], num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
''',
    "keeps_image_lists": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator).images)
    return images
''',
    "keeps_pipeline_outputs": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator))
    return images
''',
    "seed_plus_index": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for i, w in enumerate(guidance_scales):
        generator = torch.Generator(device="cpu").manual_seed(seed + i)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
''',
    "one_generator_repeated_in_a_list": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    generators = [torch.Generator(device="cpu").manual_seed(seed)] * len(guidance_scales)
    return [pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps, generator=g).images[0]
            for w, g in zip(guidance_scales, generators)]
''',
    "scale_passed_positionally": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, w, num_inference_steps=num_inference_steps, generator=generator).images[0])
    return images
''',
    "sorted_scales": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in sorted(guidance_scales):
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
''',
    "truncated_scales": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=int(w), num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
''',
    "yields_images": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        yield pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps, generator=generator).images[0]
''',
    "dict_by_scale": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = {}
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images[w] = pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                         generator=generator).images[0]
    return images
''',
}

MULTI_HEAD_CROSS_ATTENTION = {
    "heads_split_without_transpose": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, layer.num_heads, patches, layer.head_dim)
    k = layer.k_proj(context).view(batch, layer.num_heads, tokens, layer.head_dim)
    v = layer.v_proj(context).view(batch, layer.num_heads, tokens, layer.head_dim)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "heads_merged_without_transpose": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "heads_split_head_dim_first": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.head_dim, layer.num_heads).permute(0, 3, 1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.head_dim, layer.num_heads).permute(0, 3, 1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.head_dim, layer.num_heads).permute(0, 3, 1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "mask_polarity_inverted": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "mask_applied_after_softmax": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-2, -1) * layer.scale, dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask[:, None, None, :], 0.0)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "mask_multiplies_scores": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores * mask[:, None, None, :]
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "mask_fills_zero": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], 0.0)
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "mask_broadcast_over_patches": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, :, None], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "mask_truth_value": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "one_minus_bool_mask": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores + (1 - mask[:, None, None, :]) * -1e9
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "scaled_twice": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    import math
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale / math.sqrt(layer.head_dim)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "divided_by_scale": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "not_scaled": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "softmax_over_heads": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "out_proj_without_bias": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return merged @ layer.out_proj.weight.T, weights
''',
    "projections_without_bias": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    import torch.nn.functional as F
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = F.linear(x, layer.q_proj.weight).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = F.linear(context, layer.k_proj.weight).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = F.linear(context, layer.v_proj.weight).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "weights_averaged_over_heads": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights.mean(dim=1)   # average_attn_weights, as nn.MultiheadAttention
''',
    "keys_values_from_x": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(x).view(batch, -1, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(x).view(batch, -1, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "zeroes_padding_in_context_in_place": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    if mask is not None:
        context.masked_fill_(~mask[..., None], 0.0)   # blank the padding tokens
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-2, -1) * layer.scale, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    "sdpa_with_key_padding_convention": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    import torch.nn.functional as F
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    padding = None if mask is None else ~mask[:, None, None, :]   # True = ignore, as key_padding_mask
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=padding)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(padding, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return layer.out_proj(out.transpose(1, 2).reshape(batch, patches, -1)), weights
''',
}

FLOW_MATCHING_PAIR = {
    "t_as_column": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, 1)
    return (1 - t) * x0 + t * noise, noise - x0
''',
    "t_hard_coded_for_images": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, 1, 1, 1)
    return (1 - t) * x0 + t * noise, noise - x0
''',
    "t_not_reshaped": '''
def flow_matching_pair(x0, noise, t):
    return (1 - t) * x0 + t * noise, noise - x0
''',
    "one_time_for_the_batch": '''
def flow_matching_pair(x0, noise, t):
    t = t.mean()
    return (1 - t) * x0 + t * noise, noise - x0
''',
    "target_is_noise": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise, noise
''',
    "target_scaled_by_t": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    x_t = (1 - t) * x0 + t * noise
    return x_t, x_t - x0
''',
    "x0_not_faded": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return x0 + t * noise, noise - x0
''',
    "variance_preserving_mix": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return torch.sqrt(1 - t) * x0 + torch.sqrt(t) * noise, noise - x0
''',
    "x0_scaled_in_place": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    x_t = x0.mul_(1 - t)
    x_t += t * noise
    return x_t, noise - x0
''',
    "t_unsqueezed_in_place": '''
def flow_matching_pair(x0, noise, t):
    while t.dim() < x0.dim():
        t.unsqueeze_(-1)
    return (1 - t) * x0 + t * noise, noise - x0
''',
    "returns_swapped": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return noise - x0, (1 - t) * x0 + t * noise
''',
    "lerp_arguments_swapped": '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return torch.lerp(noise, x0, t), noise - x0
''',
    "t_clamped_away_from_the_ends": '''
def flow_matching_pair(x0, noise, t):
    t = t.clamp(1e-3, 1 - 1e-3).view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise, noise - x0
''',
    "t_cast_to_long": '''
def flow_matching_pair(x0, noise, t):
    t = t.long().view(-1, *([1] * (x0.dim() - 1)))   # t indexes the timesteps
    return (1 - t) * x0 + t * noise, noise - x0
''',
    "double_precision_time": '''
def flow_matching_pair(x0, noise, t):
    t = t.double().view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise, noise - x0
''',
}

DROP_TEXT = {
    "drops_when_draw_at_least_p": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0], generator=generator) >= drop_prob
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
    "global_rng": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0]) < drop_prob
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
    "numpy_rng": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.from_numpy(np.random.rand(context.shape[0]) < drop_prob)
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
    "python_random_per_row": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    import random
    rows, row_masks = [], []
    for row, row_mask in zip(context, mask):
        if random.random() < drop_prob:
            rows.append(null_context[0])
            row_masks.append(null_mask[0])
        else:
            rows.append(row)
            row_masks.append(row_mask)
    return torch.stack(rows), torch.stack(row_masks)
''',
    "writes_into_context": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0], generator=generator) < drop_prob
    context[drop] = null_context[0]
    mask[drop] = null_mask[0]
    return context, mask
''',
    "clones_context_not_mask": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0], generator=generator) < drop_prob
    context = context.clone()
    context[drop] = null_context[0]
    mask[drop] = null_mask[0]
    return context, mask
''',
    "zeroes_dropped_context": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0], generator=generator) < drop_prob
    context = context * (~drop)[:, None, None]   # a dropped caption is all zeros
    return context, torch.where(drop[:, None], null_mask, mask)
''',
    "drops_tokens_not_captions": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[:2], generator=generator) < drop_prob
    return (torch.where(drop[:, :, None], null_context, context),
            torch.where(drop, null_mask, mask))
''',
    "feature_dropout": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    import torch.nn.functional as F
    return F.dropout(context, p=drop_prob), mask
''',
    "bernoulli_of_keep_probability": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    keep = torch.full((context.shape[0],), 1.0 - drop_prob)
    drop = torch.bernoulli(keep, generator=generator).bool()
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
    "normal_draws": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.randn(context.shape[0], generator=generator) < drop_prob
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
    "masks_out_dropped_rows": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0], generator=generator) < drop_prob
    return torch.where(drop[:, None, None], null_context, context), mask & ~drop[:, None]
''',
    "own_fixed_generator": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    generator = torch.Generator().manual_seed(0)   # reproducible
    drop = torch.rand(context.shape[0], generator=generator) < drop_prob
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
    "float_mask": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = (torch.rand(context.shape[0], generator=generator) < drop_prob).float()
    new_context = drop[:, None, None] * null_context + (1 - drop[:, None, None]) * context
    new_mask = drop[:, None] * null_mask + (1 - drop[:, None]) * mask
    return new_context, new_mask
''',
}

EULER_CFG_SAMPLE = {
    "dt_sign_flipped": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x + dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "one_step_too_many": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps + 1):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "one_step_too_few": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps - 1):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "times_one_step_late": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(1, num_steps + 1):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "linspace_with_num_steps_points": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for t_now in torch.linspace(1.0, 0.0, num_steps):
        t = t_now.repeat(2 * x.shape[0])
        both = model(torch.cat([x, x]), t, torch.cat([context, null_context]), torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "chunk_order_swapped": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_uncond, v_cond = both.chunk(2)   # as in diffusers
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "split_interleaved": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both[0::2], both[1::2]
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "x_doubled_with_repeat_interleave": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((2 * x.shape[0],), 1.0 - step * dt)
        both = model(x.repeat_interleave(2, dim=0), t, torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "cfg_on_x_from_cond": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x_cond, x_uncond = x - dt * v_cond, x - dt * v_uncond
        x = x_cond + cfg_scale * (x_cond - x_uncond)
    return x
''',
    "t_not_doubled": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), t, torch.cat([context, null_context]), torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "t_as_python_float": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        both = model(torch.cat([x, x]), 1.0 - step * dt, torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "mask_not_passed": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "masks_in_the_other_order": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([null_mask, mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "cond_scaled_only": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * cfg_scale * v_cond
    return x
''',
    "zeros_as_null_text": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    empty = torch.zeros_like(context)
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, empty]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "updates_noise_in_place": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x -= dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    "returns_trajectory": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    trajectory = [x]
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
        trajectory.append(x)
    return torch.stack(trajectory)
''',
}

MISTAKES: dict[str, dict[str, str]] = {
    "cross_attention": CROSS_ATTENTION,
    "apply_cfg": APPLY_CFG,
    "guidance_norms": GUIDANCE_NORMS,
    "generate_guidance_sweep": GENERATE_GUIDANCE_SWEEP,
    "multi_head_cross_attention": MULTI_HEAD_CROSS_ATTENTION,
    "flow_matching_pair": FLOW_MATCHING_PAIR,
    "drop_text": DROP_TEXT,
    "euler_cfg_sample": EULER_CFG_SAMPLE,
}

# Correct on the CPU, where the grader runs them; they break (a device mismatch) once the inputs are on a GPU.
# generate_guidance_sweep has none: the pipeline proxy always says it is on the CPU, and a CUDA generator is
# accepted as correct (tests/submissions.py CORRECT["real_pipeline_arguments"]).
GPU_ONLY_MISTAKES: dict[str, dict[str, str]] = {
    "cross_attention": {
        "scale_as_cpu_tensor": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    d_k = torch.tensor([k.shape[-1]], dtype=q.dtype)
    weights = torch.softmax(q @ k.T / torch.sqrt(d_k), dim=-1)
    return weights @ v, weights
''',
    },
    "apply_cfg": {
        "scale_as_cpu_tensor": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    w = torch.tensor([guidance_scale], dtype=noise_uncond.dtype)
    return noise_uncond + w * (noise_cond - noise_uncond)
''',
    },
    "guidance_norms": {
        "vectorised_scales_on_cpu": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    w = torch.tensor(guidance_scales, dtype=noise_uncond.dtype).view(-1, *([1] * noise_uncond.dim()))
    guided = noise_uncond + w * (noise_cond - noise_uncond)
    return guided.flatten(1).norm(dim=1).tolist()
''',
    },
    "multi_head_cross_attention": {
        "default_mask_on_cpu": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    if mask is None:
        mask = torch.ones(batch, tokens, dtype=torch.bool)
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = (q @ k.transpose(-2, -1) * layer.scale).masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
''',
    },
    "flow_matching_pair": {
        "ones_on_cpu": '''
def flow_matching_pair(x0, noise, t):
    shape = (-1, *([1] * (x0.dim() - 1)))
    keep = (torch.ones(x0.shape[0]) - t).view(shape)
    return keep * x0 + t.view(shape) * noise, noise - x0
''',
    },
    "drop_text": {
        "drop_mask_left_on_cpu": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0], generator=generator) < drop_prob
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
        "cpu_generator_on_context_device": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = torch.rand(context.shape[0], generator=generator, device=context.device) < drop_prob
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
    },
    "euler_cfg_sample": {
        "times_on_cpu": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((2 * x.shape[0],), 1.0 - step * dt)
        both = model(torch.cat([x, x]), t, torch.cat([context, null_context]), torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
        "linspace_on_cpu": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    times = torch.linspace(1.0, 0.0, num_steps + 1)
    for t_now, t_next in zip(times[:-1], times[1:]):
        t = t_now.repeat(2 * x.shape[0])
        v_cond, v_uncond = model(torch.cat([x, x]), t, torch.cat([context, null_context]),
                                 torch.cat([mask, null_mask])).chunk(2)
        x = x + (t_next - t_now) * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
''',
    },
}

CORRECT_IDIOMS: dict[str, dict[str, str]] = {
    "cross_attention": {
        "diffusers_baddbmm": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    query, key, value = W_Q(x_spatial)[None], W_K(x_text)[None], W_V(x_text)[None]
    scale = query.shape[-1] ** -0.5
    baddbmm_input = torch.empty(1, query.shape[1], key.shape[1], dtype=query.dtype, device=query.device)
    attention_scores = torch.baddbmm(baddbmm_input, query, key.transpose(-1, -2), beta=0, alpha=scale)
    attention_probs = attention_scores.softmax(dim=-1)
    return torch.bmm(attention_probs, value)[0], attention_probs[0]
''',
        "openai_split_scale": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    scale = 1 / math.sqrt(math.sqrt(q.shape[-1]))   # guided-diffusion's QKVAttention: q and k each by d^-1/4
    weight = torch.einsum("tc,sc->ts", q * scale, k * scale)
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    return torch.einsum("ts,sc->tc", weight, v), weight
''',
        "sdpa_and_separate_weights": '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    output = F.scaled_dot_product_attention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0)).squeeze(0)
    weights = F.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(k.size(-1)), dim=1)
    return output, weights
''',
    },
    "apply_cfg": {
        "k_diffusion_dit_order": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + (noise_cond - noise_uncond) * guidance_scale
''',
        "lerp": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return torch.lerp(noise_uncond, noise_cond, float(guidance_scale))
''',
        "imagen_from_cond": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_cond + (guidance_scale - 1) * (noise_cond - noise_uncond)
''',
        "diffusers_chunk": '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    noise_pred = torch.cat([noise_uncond, noise_cond])
    noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
    return noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)
''',
    },
    "guidance_norms": {
        "loop_vector_norm": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    norms = []
    for w in guidance_scales:
        guided = apply_cfg(noise_uncond, noise_cond, w)
        norms.append(float(torch.linalg.vector_norm(guided)))
    return norms
''',
        "vectorised_tolist": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    w = torch.tensor(guidance_scales, dtype=noise_uncond.dtype, device=noise_uncond.device)
    w = w.view(-1, *([1] * noise_uncond.dim()))
    guided = noise_uncond + w * (noise_cond - noise_uncond)
    return guided.flatten(1).norm(dim=1).tolist()
''',
        "sqrt_of_sum_of_squares": '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [math.sqrt((apply_cfg(noise_uncond, noise_cond, w) ** 2).sum().item()) for w in guidance_scales]
''',
    },
    "generate_guidance_sweep": {
        "torch_manual_seed_generator": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=torch.manual_seed(seed)).images[0])
    return images
''',
        "one_generator_reseeded_per_scale": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    generator = torch.Generator("cpu")
    images = []
    for w in guidance_scales:
        generator.manual_seed(seed)
        output = pipe(prompt=prompt, guidance_scale=w, num_inference_steps=num_inference_steps, generator=generator)
        images.append(output.images[0])
    return images
''',
        "return_dict_false": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    return [pipe(prompt, num_inference_steps=num_inference_steps, guidance_scale=float(w),
                 generator=torch.Generator(device="cpu").manual_seed(seed), return_dict=False)[0][0]
            for w in guidance_scales]
''',
        "generator_list": '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generators = [torch.Generator(device="cpu").manual_seed(seed)]
        images += pipe([prompt], guidance_scale=w, num_inference_steps=num_inference_steps,
                       generator=generators).images
    return images
''',
    },
    "multi_head_cross_attention": {
        "diffusers_attn_processor": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch_size, sequence_length, _ = x.shape
    heads = layer.num_heads

    def head_to_batch_dim(tensor):
        b, seq_len, dim = tensor.shape
        tensor = tensor.reshape(b, seq_len, heads, dim // heads).permute(0, 2, 1, 3)
        return tensor.reshape(b * heads, seq_len, dim // heads)

    query = head_to_batch_dim(layer.q_proj(x))
    key = head_to_batch_dim(layer.k_proj(context))
    value = head_to_batch_dim(layer.v_proj(context))
    if mask is None:
        baddbmm_input = torch.empty(query.shape[0], query.shape[1], key.shape[1], dtype=query.dtype,
                                    device=query.device)
        beta = 0
    else:
        attention_mask = (1.0 - mask.to(query.dtype)) * -10000.0
        baddbmm_input = attention_mask.repeat_interleave(heads, dim=0)[:, None, :]
        beta = 1
    attention_scores = torch.baddbmm(baddbmm_input, query, key.transpose(-1, -2), beta=beta, alpha=layer.scale)
    attention_probs = attention_scores.softmax(dim=-1)
    hidden_states = torch.bmm(attention_probs, value)
    hidden_states = hidden_states.reshape(batch_size, heads, sequence_length, -1).permute(0, 2, 1, 3)
    hidden_states = hidden_states.reshape(batch_size, sequence_length, -1)
    return layer.out_proj(hidden_states), attention_probs.reshape(batch_size, heads, sequence_length, -1)
''',
        "sdpa_and_separate_weights": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    import torch.nn.functional as F
    split = lambda t: t.unflatten(-1, (layer.num_heads, layer.head_dim)).transpose(1, 2)
    q, k, v = split(layer.q_proj(x)), split(layer.k_proj(context)), split(layer.v_proj(context))
    attn_mask = None if mask is None else mask.bool()[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=layer.scale)
    scores = (q @ k.transpose(-2, -1)) * layer.scale
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    weights = scores.softmax(-1)
    return layer.out_proj(out.transpose(1, 2).flatten(2)), weights
''',
        "einsum_finfo_min": '''
def multi_head_cross_attention(layer, x, context, mask=None):
    B, N, _ = x.shape
    M = context.shape[1]
    H, D = layer.num_heads, layer.head_dim
    q = layer.q_proj(x).reshape(B, N, H, D)
    k = layer.k_proj(context).reshape(B, M, H, D)
    v = layer.v_proj(context).reshape(B, M, H, D)
    scores = torch.einsum("bnhd,bmhd->bhnm", q, k) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(mask[:, None, None, :].logical_not(), torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    out = torch.einsum("bhnm,bmhd->bnhd", weights, v).reshape(B, N, H * D)
    return layer.out_proj(out), weights
''',
    },
    "flow_matching_pair": {
        "rectified_flow_sigmas": '''
def flow_matching_pair(x0, noise, t):
    sigmas = t.flatten()
    while sigmas.ndim < x0.ndim:
        sigmas = sigmas.unsqueeze(-1)
    noisy = (1.0 - sigmas) * x0 + sigmas * noise
    return noisy, noise - x0
''',
        "lerp_with_none_index": '''
def flow_matching_pair(x0, noise, t):
    t = t[(...,) + (None,) * (x0.dim() - 1)]
    return torch.lerp(x0, noise, t.to(x0.dtype)), noise - x0
''',
        "addcmul": '''
def flow_matching_pair(x0, noise, t):
    velocity = noise - x0
    t = t.reshape(x0.shape[0], *([1] * (x0.dim() - 1)))
    return torch.addcmul(x0, t, velocity), velocity
''',
    },
    "drop_text": {
        "bernoulli_where": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    probs = torch.full((context.shape[0],), float(drop_prob))
    drop = torch.bernoulli(probs, generator=generator).bool().to(context.device)   # the generator is a CPU one
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
''',
        "instruct_pix2pix_expand": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    bsz = context.shape[0]
    random_p = torch.rand(bsz, generator=generator).to(context.device)   # diffusers' train_instruct_pix2pix
    prompt_mask = (random_p < drop_prob).reshape(bsz, 1, 1)
    new_context = torch.where(prompt_mask, null_context.expand_as(context), context)
    new_mask = torch.where(prompt_mask[:, :, 0], null_mask.expand_as(mask), mask)
    return new_context, new_mask
''',
        "loop_one_draw_per_row": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    rows, row_masks = [], []
    for i in range(context.shape[0]):
        dropped = torch.rand((), generator=generator).item() < drop_prob
        rows.append(null_context[0] if dropped else context[i])
        row_masks.append(null_mask[0] if dropped else mask[i])
    return torch.stack(rows), torch.stack(row_masks)
''',
        "clone_and_index_keep": '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    keep = torch.rand(len(context), generator=generator) >= drop_prob
    new_context, new_mask = context.clone(), mask.clone()
    new_context[~keep] = null_context.to(context.dtype)
    new_mask[~keep] = null_mask
    return new_context, new_mask
''',
    },
    "euler_cfg_sample": {
        "diffusers_null_first": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    timesteps = torch.linspace(1.0, 0.0, num_steps + 1, device=x.device)
    prompt_embeds = torch.cat([null_context, context])
    attention_mask = torch.cat([null_mask, mask])
    for i in range(num_steps):
        t, t_next = timesteps[i], timesteps[i + 1]
        latent_model_input = torch.cat([x] * 2)
        noise_pred = model(latent_model_input, t.expand(latent_model_input.shape[0]), prompt_embeds, attention_mask)
        noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
        noise_pred = noise_pred_uncond + cfg_scale * (noise_pred_text - noise_pred_uncond)
        x = x + (t_next - t) * noise_pred
    return x
''',
        "k_diffusion_sigmas": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    sigmas = [1.0 - i / num_steps for i in range(num_steps + 1)]
    cond_in, mask_in = torch.cat([null_context, context]), torch.cat([null_mask, mask])
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        x_in = torch.cat([x] * 2)
        t_in = x.new_full((x_in.shape[0],), sigma)
        uncond, cond = model(x_in, t_in, cond_in, mask_in).chunk(2)
        denoised = uncond + (cond - uncond) * cfg_scale
        x = x + (sigma_next - sigma) * denoised
    return x
''',
        "dit_forward_with_cfg": '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    y = torch.cat([context, null_context], 0)
    y_mask = torch.cat([mask, null_mask], 0)
    dt = 1.0 / num_steps
    for i in range(num_steps):
        combined = torch.cat([x, x], dim=0)
        t = torch.ones(len(combined), device=x.device) * (1.0 - i * dt)
        model_out = model(combined, t, y, y_mask)
        cond_v, uncond_v = torch.split(model_out, len(model_out) // 2, dim=0)
        half_v = uncond_v + cfg_scale * (cond_v - uncond_v)
        x = x - dt * half_v
    return x
''',
    },
}
