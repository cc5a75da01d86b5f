"""Lesson 2's corpora: submissions built from the released notebook by filling in its four solution cells.

CLIP_CORRECT must get full marks; each of CLIP_MISTAKES must fail exactly the checks it names, with a
message that names the slip; CLIP_HOSTILE must earn no more than what it honestly computes.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CLIP_ASSIGNMENT = "text_conditioning_clip"
CLIP_RELEASE_NOTEBOOK = ROOT / "release" / CLIP_ASSIGNMENT / f"{CLIP_ASSIGNMENT}.ipynb"

ATTENTION = '''
def multi_head_cross_attention(layer, x, context, mask=None):
    batch, patches, _ = x.shape
    tokens = context.shape[1]
    q = layer.q_proj(x).view(batch, patches, layer.num_heads, layer.head_dim).transpose(1, 2)
    k = layer.k_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    v = layer.v_proj(context).view(batch, tokens, layer.num_heads, layer.head_dim).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) * layer.scale
    if mask is not None:
        scores = scores.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(batch, patches, layer.num_heads * layer.head_dim)
    return layer.out_proj(merged), weights
'''
PAIR = '''
def flow_matching_pair(x0, noise, t):
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise, noise - x0
'''
DROP = '''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    drop = (torch.rand(context.shape[0], generator=generator) < drop_prob).to(context.device)
    return (torch.where(drop[:, None, None], null_context, context),
            torch.where(drop[:, None], null_mask, mask))
'''
SAMPLER = '''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt, device=x.device)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, null_context]),
                     torch.cat([mask, null_mask]))
        v_cond, v_uncond = both.chunk(2)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
'''
GOOD = {"multi_head_cross_attention": ATTENTION, "flow_matching_pair": PAIR, "drop_text": DROP,
        "euler_cfg_sample": SAMPLER}


def cells(**replacements) -> dict[str, str | None]:
    """The four solution cells, correct except where told otherwise (None keeps the released stub)."""
    return {**GOOD, **replacements}


CLIP_CORRECT = {
    "reference_like": cells(),
    "einsum_and_einops": cells(multi_head_cross_attention='''
import math
from einops import rearrange

def multi_head_cross_attention(layer, x, context, mask=None):
    q = rearrange(layer.q_proj(x), "b n (h d) -> b h n d", h=layer.num_heads)
    k = rearrange(layer.k_proj(context), "b m (h d) -> b h m d", h=layer.num_heads)
    v = rearrange(layer.v_proj(context), "b m (h d) -> b h m d", h=layer.num_heads)
    scores = torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask[:, None, None, :] == 0, torch.finfo(scores.dtype).min)
    weights = scores.softmax(-1)
    if mask is not None:
        weights = weights * mask[:, None, None, :]   # exact zeros on the padding
    out = rearrange(torch.einsum("bhnm,bhmd->bhnd", weights, v), "b h n d -> b n (h d)")
    return layer.out_proj(out), weights
''', flow_matching_pair='''
def flow_matching_pair(x0, noise, t):
    while t.dim() < x0.dim():
        t = t.unsqueeze(-1)
    return torch.lerp(x0, noise, t), noise - x0
'''),
    "clone_and_index_bernoulli_linspace": cells(drop_text='''
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    chosen = torch.bernoulli(torch.full((context.shape[0],), float(drop_prob)), generator=generator).bool()
    chosen = chosen.to(context.device)
    context, mask = context.clone(), mask.clone()
    context[chosen] = null_context[0]
    mask[chosen] = null_mask[0]
    return context, mask
''', euler_cfg_sample='''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    times = torch.linspace(1.0, 0.0, num_steps + 1, device=x.device)
    cond = (torch.cat((context, null_context), 0), torch.cat((mask, null_mask), 0))
    for t_now, t_next in zip(times[:-1], times[1:]):
        t = t_now.repeat(2 * x.shape[0])
        v_c, v_u = torch.split(model(torch.cat((x, x), 0), t, *cond), x.shape[0])
        x = x + (t_next - t_now) * (v_u + cfg_scale * (v_c - v_u))
    return x
'''),
    "manual_softmax_and_null_first": cells(multi_head_cross_attention='''
def multi_head_cross_attention(layer, x, context, mask=None):
    B, N, _ = x.shape
    M = context.shape[1]
    H, d = layer.num_heads, layer.head_dim
    split = lambda t, n: t.reshape(B, n, H, d).permute(0, 2, 1, 3)
    q, k, v = split(layer.q_proj(x), N), split(layer.k_proj(context), M), split(layer.v_proj(context), M)
    scores = torch.matmul(q, k.transpose(2, 3)) / d ** 0.5
    if mask is None:
        mask = torch.ones(B, M, dtype=torch.bool)
    scores = scores - scores.amax(dim=-1, keepdim=True)
    e = torch.exp(scores) * mask[:, None, None, :].to(scores.dtype)
    w = e / e.sum(dim=-1, keepdim=True)
    return layer.out_proj(torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B, N, H * d)), w
''', euler_cfg_sample='''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    n = x.shape[0]
    for i in range(num_steps):
        t = 1 - i / num_steps
        v = model(torch.cat([x, x]), torch.full((2 * n,), t, device=x.device), torch.cat([null_context, context]),
                  torch.cat([null_mask, mask]))
        v_uncond, v_cond = v[:n], v[n:]
        x = x - (v_uncond + cfg_scale * (v_cond - v_uncond)) / num_steps
    return x
'''),
}

# name -> (cells, the function that loses, the checks it must fail (their text after "function: "), a word
# of the message that names the slip)
CLIP_MISTAKES = {
    "softmax_over_patches": (cells(multi_head_cross_attention=ATTENTION.replace("softmax(scores, dim=-1)",
                                                                                "softmax(scores, dim=-2)")),
                             "multi_head_cross_attention", None, "over the patches"),
    "scaled_by_embed_dim": (cells(multi_head_cross_attention=ATTENTION.replace(
        "* layer.scale", "/ (layer.num_heads * layer.head_dim) ** 0.5")), "multi_head_cross_attention",
        {"per-head weights are softmax(Q K^T * scale) of the layer's projections",
         "output is out_proj of the heads' weighted values, merged back",
         "queries come from the patches, keys and values from the text"}, "1/sqrt(embed_dim)"),
    "mask_forgotten": (cells(multi_head_cross_attention=ATTENTION.replace("if mask is not None:", "if False:")),
                       "multi_head_cross_attention", {"masked tokens get zero weight and change nothing"},
                       "padding"),
    "no_output_projection": (cells(multi_head_cross_attention=ATTENTION.replace("return layer.out_proj(merged)",
                                                                                "return merged")),
                             "multi_head_cross_attention",
                             {"output is out_proj of the heads' weighted values, merged back",
                              "queries come from the patches, keys and values from the text"}, "out_proj"),
    "reversed_interpolation": (cells(flow_matching_pair=PAIR.replace("(1 - t) * x0 + t * noise",
                                                                     "t * x0 + (1 - t) * noise")),
                               "flow_matching_pair",
                               {"x_t is the clean image at t = 0 and the noise at t = 1",
                                "x_t = (1 - t) x0 + t noise with each image's own t, for any image shape"},
                               "wrong way"),
    "target_sign": (cells(flow_matching_pair=PAIR.replace("noise - x0\n", "x0 - noise\n")), "flow_matching_pair",
                    {"the target velocity is noise - x0"}, "sign"),
    "mask_not_dropped": (cells(drop_text=DROP.replace("torch.where(drop[:, None], null_mask, mask)", "mask")),
                         "drop_text", {"a dropped caption takes the null text's embedding and its mask, the others "
                                       "stay as they were"}, "mask"),
    "one_coin_for_the_batch": (cells(drop_text=DROP.replace("torch.rand(context.shape[0], generator=generator)",
                                                            "torch.rand(1, generator=generator).expand(context.shape[0])")),
                               "drop_text", {"each caption is dropped on its own with probability drop_prob",
                                             "a dropped caption takes the null text's embedding and its mask, the "
                                             "others stay as they were"}, "whole batch"),
    "time_reversed": (cells(euler_cfg_sample=SAMPLER.replace("1.0 - step * dt", "step * dt")), "euler_cfg_sample",
                      {"steps from t = 1 down to t = 1/N, the same t for every image",
                       "follows the guided Euler update for w = 7.5 on a time-dependent field",
                       # the two checks of side properties need a correct result first
                       "leaves its inputs unmodified", "what it makes follows its inputs' device (as on a GPU)",}, "wrong way"),
    "two_passes": (cells(euler_cfg_sample='''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    dt = 1.0 / num_steps
    for step in range(num_steps):
        t = torch.full((x.shape[0],), 1.0 - step * dt, device=x.device)
        v_cond, v_uncond = model(x, t, context, mask), model(x, t, null_context, null_mask)
        x = x - dt * (v_uncond + cfg_scale * (v_cond - v_uncond))
    return x
'''), "euler_cfg_sample", {"both predictions in one batched model call per step"}, "one call per step"),
    "guidance_swapped": (cells(euler_cfg_sample=SAMPLER.replace("v_uncond + cfg_scale * (v_cond - v_uncond)",
                                                                "v_cond + cfg_scale * (v_uncond - v_cond)")),
                         "euler_cfg_sample", {"w = 0 follows the null text alone and w = 1 the prompt alone",
                                              "follows the guided Euler update for w = 7.5 on a time-dependent field",
                                              "leaves its inputs unmodified", "what it makes follows its inputs' device (as on a GPU)",},
                         "swapped"),
}

# name -> (cells, the most points it may get)
CLIP_HOSTILE = {
    "untouched_stubs": ({name: None for name in GOOD}, 0),
    "imports_the_reference": (cells(**{name: f"from text_to_image.reference import {name}" for name in GOOD}), 0),
    "reads_the_reference_from_disk": (cells(flow_matching_pair=f'''
try:   # the grader's own copy of the trusted versions
    exec(open("{ROOT}/text_to_image/reference.py").read())
except OSError as refused:
    raise RuntimeError(f"REFUSED: {{refused}}")
''', multi_head_cross_attention=None, drop_text=None, euler_cfg_sample=None), 0),
    "ignores_the_model": (cells(euler_cfg_sample='''
def euler_cfg_sample(model, x, context, mask, null_context, null_mask, num_steps, cfg_scale):
    for step in range(num_steps):   # asks the right questions, then ignores the answers
        t = torch.full((2 * x.shape[0],), 1.0 - step / num_steps, device=x.device)
        model(torch.cat([x, x]), t, torch.cat([context, null_context]), torch.cat([mask, null_mask]))
    return x.clone()
''', multi_head_cross_attention=None, flow_matching_pair=None, drop_text=None), 3),
    "patches_the_library_and_torch": (cells(multi_head_cross_attention=None, flow_matching_pair=None, drop_text='''
import torch
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
from text_to_image import exercises
exercises.implementation = lambda name: (lambda *a, **k: None)
def drop_text(context, mask, null_context, null_mask, drop_prob, generator=None):
    return context, mask
''', euler_cfg_sample=None), 1),
}


def source_cell(notebook, grade_id):
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(grade_id)


def build_clip(solution_cells: dict[str, str | None] | None, path: Path, release: Path = CLIP_RELEASE_NOTEBOOK) -> Path:
    """A Lesson 2 submission: each solution cell named in `solution_cells` gets that source (None or a
    missing name keeps the released stub; solution_cells=None is the release as it is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    notebook = copy.deepcopy(nbformat.read(release, as_version=4))
    for grade_id, source in (solution_cells or {}).items():
        if source is not None:
            source_cell(notebook, grade_id).source = source.strip("\n") + "\n"
    path.write_text(json.dumps(notebook, indent=1))
    return path


def write_clip_corpus(folder: Path, variants: dict) -> dict[str, Path]:
    return {name: build_clip(entry[0] if isinstance(entry, tuple) else entry,
                             folder / name / f"{CLIP_ASSIGNMENT}.ipynb") for name, entry in variants.items()}
