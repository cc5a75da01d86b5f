"""Corpora of submissions, built from the released notebooks by filling in their solution cells.

CORRECT variants must get full marks, MISTAKES must lose points on the function they get wrong, and
HOSTILE ones must earn nothing they did not honestly compute, without hurting the grader.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tests.clip_submissions import CLIP_ASSIGNMENT, CLIP_CORRECT, CLIP_MISTAKES, build_clip, source_cell as _source_cell

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "text_conditioning_guidance"
RELEASE_NOTEBOOK = ROOT / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"

GOOD_CROSS_ATTENTION = '''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    w = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return w @ v, w
'''
GOOD_APPLY_CFG = '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond)
'''
GOOD_NORMS = '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    return [apply_cfg(noise_uncond, noise_cond, float(w)).norm().item() for w in guidance_scales]
'''
GOOD_SWEEP = '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=generator).images[0])
    return images
'''
# Exercise 4's experiment as a student would write it: their prompt, the provided `pipe`, their figure.
GOOD_EXPERIMENT = '''
prompt = "a red fox in the snow, watercolour"
scales = [1, 3, 7.5, 12, 20]
if pipe is None:
    print("no model here")
else:
    pictures = generate_guidance_sweep(pipe, prompt, scales, seed=0, num_inference_steps=NUM_STEPS)
    fig, axes = plt.subplots(1, len(scales), figsize=(15, 3))
    for ax, picture, w in zip(axes, pictures, scales):
        ax.imshow(picture)
        ax.set_title(f"w = {w}")
        ax.axis("off")
    plt.show()
'''


@dataclass
class Variant:
    cross_attention: str | None = GOOD_CROSS_ATTENTION   # None keeps the released stub
    apply_cfg: str | None = GOOD_APPLY_CFG
    guidance_norms: str | None = None
    generate_guidance_sweep: str | None = None
    guidance_sweep_images: str | None = None                # Exercise 4's experiment (ungraded)
    extra_cells: list[str] = field(default_factory=list)  # appended code cells
    before: dict[str, list[str]] = field(default_factory=dict)   # grade_id -> code cells inserted just before it
    after: dict[str, list[str]] = field(default_factory=dict)    # grade_id -> code cells inserted just after it
    locked: dict[str, str] = field(default_factory=dict)          # grade_id of a locked cell -> what the student made it
    strip_metadata: bool = False
    reverse_cells: bool = False
    raw_bytes: bytes | None = None                        # not a notebook at all
    suffix: str = ".ipynb"


def variant_with(cross_attention=None, apply_cfg=None, guidance_norms=None, generate_guidance_sweep=None,
                 **kwargs) -> Variant:
    """A submission that is correct except where told otherwise."""
    return Variant(cross_attention=cross_attention or GOOD_CROSS_ATTENTION, apply_cfg=apply_cfg or GOOD_APPLY_CFG,
                   guidance_norms=guidance_norms or GOOD_NORMS,
                   generate_guidance_sweep=generate_guidance_sweep or GOOD_SWEEP,
                   **{"guidance_sweep_images": GOOD_EXPERIMENT, **kwargs})


CORRECT = {
    # As held-out real implementations call a real StableDiffusionPipeline: arguments that do not change
    # the image, and the lesson's generator made on "cuda" (the sandbox has no GPU: a CPU one stands in).
    "real_pipeline_arguments": variant_with(generate_guidance_sweep='''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        generator = torch.Generator("cuda").manual_seed(seed)
        result = pipe(prompt=[prompt], negative_prompt="", eta=0.0, guidance_scale=w, output_type="pil",
                      num_inference_steps=num_inference_steps, generator=generator, callback_on_step_end=None,
                      num_images_per_prompt=1, return_dict=True)
        images.append(result.images[0])
    return images
'''),
    "einsum": variant_with(cross_attention='''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    scores = torch.einsum("qd,td->qt", q, k) * k.shape[-1] ** -0.5
    weights = scores.softmax(-1)
    return torch.einsum("qt,td->qd", weights, v), weights
'''),
    "sdpa": variant_with(cross_attention='''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    out = F.scaled_dot_product_attention(q[None], k[None], v[None])[0]
    weights = torch.softmax(q @ k.transpose(0, 1) / math.sqrt(q.shape[-1]), dim=1)
    return out, weights
'''),
    "manual_softmax_helpers_constants": variant_with(
        cross_attention='''
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q = project(W_Q, x_spatial)
    k, v = project(W_K, x_text), project(W_V, x_text)
    weights = stable_softmax(q @ k.T * (k.shape[-1] ** EXPONENT))
    return weights @ v, weights
''',
        extra_cells=['''
EXPONENT = -0.5
def stable_softmax(scores):
    shifted = torch.exp(scores - scores.max(dim=AXIS, keepdim=True).values)
    return shifted / shifted.sum(dim=AXIS, keepdim=True)
''', "AXIS = -1\ndef project(layer, x):\n    return layer(x)\n"]),
    "lerp_and_redefined_later": variant_with(
        apply_cfg="def apply_cfg(noise_uncond, noise_cond, guidance_scale):\n    return noise_cond  # first try\n",
        extra_cells=["def apply_cfg(noise_uncond, noise_cond, guidance_scale):\n"
                     "    return torch.lerp(noise_uncond, noise_cond, guidance_scale)\n"]),
    "einops": variant_with(cross_attention='''
from einops import einsum, rearrange
def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = (einsum(q, k, "n d, t d -> n t") / k.shape[-1] ** 0.5).softmax(dim=-1)
    return einsum(weights, v, "n t, t e -> n e"), rearrange(weights, "n t -> n t")
'''),
    "one_minus_w_form": variant_with(apply_cfg='''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    w = guidance_scale
    return (1 - w) * noise_uncond + w * noise_cond
'''),
    "magics_and_broken_cells": variant_with(extra_cells=["%matplotlib inline\n!pip list\nprint('hi')",
                                                         "def oops(:\n    pass", "%%bash\necho cell magic"]),
    "no_metadata_cells_reversed": variant_with(strip_metadata=True, reverse_cells=True),
}

def sweep_at_size(pixels: int) -> Variant:
    """The correct sweep asking the pipeline for pixels x pixels images."""
    return variant_with(generate_guidance_sweep=GOOD_SWEEP.replace(
        "num_inference_steps=num_inference_steps,",
        f"num_inference_steps=num_inference_steps, height={pixels}, width={pixels},"))


MISTAKES = {  # name -> (variant, the function that must lose points)
    "sweep_at_480": (sweep_at_size(480), "generate_guidance_sweep"),
    "softmax_wrong_axis": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace("dim=-1", "dim=0")),
                           "cross_attention"),
    "no_scaling": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace(" / math.sqrt(k.shape[-1])", "")),
                   "cross_attention"),
    "scaled_by_d_k": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace("math.sqrt(k.shape[-1])",
                                                                               "k.shape[-1]")), "cross_attention"),
    "kv_from_spatial": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace(
        "W_K(x_text), W_V(x_text)", "W_K(x_spatial), W_V(x_spatial)")), "cross_attention"),
    "output_from_keys": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace("w @ v, w", "w @ k, w")),
                         "cross_attention"),
    "swapped_returns": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace("w @ v, w", "w, w @ v")),
                        "cross_attention"),
    "uniform_weights": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace(
        "w = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)",
        "w = torch.full((q.shape[0], k.shape[0]), 1.0 / k.shape[0])")), "cross_attention"),
    "imports_a_missing_module": (variant_with(apply_cfg='''
import jax.numpy as jnp
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    guided = jnp.asarray(noise_uncond) + guidance_scale * (jnp.asarray(noise_cond) - jnp.asarray(noise_uncond))
    return torch.from_numpy(np.asarray(guided))
'''), "apply_cfg"),
    "scaled_by_value_width": (variant_with(cross_attention=GOOD_CROSS_ATTENTION.replace("math.sqrt(k.shape[-1])",
                                                                                       "math.sqrt(v.shape[-1])")),
                              "cross_attention"),
    "cfg_common_mistake": (variant_with(apply_cfg=GOOD_APPLY_CFG.replace(
        "noise_uncond + guidance_scale", "noise_cond + guidance_scale")), "apply_cfg"),
    "cfg_clamped_scale": (variant_with(apply_cfg='''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    w = min(max(guidance_scale, 0.0), 10.0)
    return noise_uncond + w * (noise_cond - noise_uncond)
'''), "apply_cfg"),
    "cfg_rounded_scale": (variant_with(apply_cfg=GOOD_APPLY_CFG.replace("guidance_scale *", "round(guidance_scale) *")),
                          "apply_cfg"),
    "cfg_in_place": (variant_with(apply_cfg='''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    noise_cond -= noise_uncond
    noise_cond *= guidance_scale
    return noise_uncond + noise_cond
'''), "apply_cfg"),
    "norms_squared": (variant_with(guidance_norms=GOOD_NORMS.replace(".norm().item()", ".pow(2).sum().item()")),
                      "guidance_norms"),
    "norms_as_tensors": (variant_with(guidance_norms=GOOD_NORMS.replace(".norm().item()", ".norm()")),
                         "guidance_norms"),
    "norms_of_text_direction": (variant_with(guidance_norms=GOOD_NORMS.replace(
        "apply_cfg(noise_uncond, noise_cond, float(w)).norm()", "(float(w) * (noise_cond - noise_uncond)).norm()")),
                                "guidance_norms"),
    "sweep_without_pipeline": (variant_with(generate_guidance_sweep='''
from PIL import Image
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    return [Image.new("RGB", (64, 64), (90, 120, 200)) for _ in guidance_scales]
'''), "generate_guidance_sweep"),
    "sweep_ignores_scale": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace("guidance_scale=w",
                                                                                    "guidance_scale=7.5")),
                            "generate_guidance_sweep"),
    "sweep_reuses_generator": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace(
        "    images = []\n", "    images = []\n    shared = torch.Generator(device=\"cpu\").manual_seed(seed)\n").replace(
        "generator=generator", "generator=shared")), "generate_guidance_sweep"),
    "sweep_ignores_seed": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace("manual_seed(seed)",
                                                                                   "manual_seed(0)")),
                           "generate_guidance_sweep"),
    "sweep_without_generator": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace(
        "num_inference_steps=num_inference_steps,\n                           generator=generator)",
        "num_inference_steps=num_inference_steps)")), "generate_guidance_sweep"),
    # A real CPU pipeline makes the reference images from a seeded global generator too: only the check
    # that asks for a generator per call fails.
    "sweep_seeds_globally": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace(
        'generator = torch.Generator(device="cpu").manual_seed(seed)', "torch.manual_seed(seed)").replace(
        "num_inference_steps=num_inference_steps,\n                           generator=generator)",
        "num_inference_steps=num_inference_steps)")), "generate_guidance_sweep"),
    "sweep_other_steps": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace(
        "num_inference_steps=num_inference_steps", "num_inference_steps=15")), "generate_guidance_sweep"),
    "sweep_hard_codes_default_steps": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace(
        "num_inference_steps=num_inference_steps", "num_inference_steps=30")), "generate_guidance_sweep"),
    "sweep_wrong_count": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace("return images",
                                                                                  "return images[-1:]")),
                          "generate_guidance_sweep"),
    "sweep_wrong_type": (variant_with(generate_guidance_sweep=GOOD_SWEEP.replace(
        "return images", "return [np.asarray(image) for image in images]")), "generate_guidance_sweep"),
}


# Notebook styles students really write: each runs top to bottom in Jupyter and passes the visible
# tests (tests/test_parity.py proves it in a real kernel), so each must get full marks.
PARITY = {
    "guarded_import": variant_with(apply_cfg='''
try:
    from torch import lerp as _lerp
except ImportError:
    _lerp = None

def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    if _lerp is None:
        return noise_uncond + guidance_scale * (noise_cond - noise_uncond)
    return _lerp(noise_uncond, noise_cond, float(guidance_scale))
'''),
    "table_built_in_a_loop": variant_with(before={"apply_cfg": ['''
CFG_TERMS = {}
for name, sign in (("uncond", -1.0), ("cond", 1.0)):
    CFG_TERMS[name] = sign
''']}, apply_cfg='''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    direction = CFG_TERMS["cond"] * noise_cond + CFG_TERMS["uncond"] * noise_uncond
    return noise_uncond + guidance_scale * direction
'''),
    "defined_inside_with": variant_with(apply_cfg='''
with torch.no_grad():
    def apply_cfg(noise_uncond, noise_cond, guidance_scale):
        return noise_uncond + guidance_scale * (noise_cond - noise_uncond)
'''),
    "defined_inside_if": variant_with(guidance_norms='''
if "apply_cfg" in globals():
    def guidance_norms(noise_uncond, noise_cond, guidance_scales):
        return [apply_cfg(noise_uncond, noise_cond, float(w)).norm().item() for w in guidance_scales]
else:
    raise RuntimeError("run the apply_cfg cell first")
'''),
    "defined_inside_try": variant_with(cross_attention='''
try:
    def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
        q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
        weights = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
        return weights @ v, weights
except Exception as problem:
    print("could not define cross_attention:", problem)
'''),
    "closure_factory": variant_with(apply_cfg='''
def make_guidance(start_from="uncond"):
    def guide(noise_uncond, noise_cond, guidance_scale):
        base = noise_uncond if start_from == "uncond" else noise_cond
        return base + guidance_scale * (noise_cond - noise_uncond)
    return guide

apply_cfg = make_guidance()
'''),
    "functools_partial": variant_with(guidance_norms='''
import functools

def _norms(noise_uncond, noise_cond, guidance_scales, *, combine):
    return [float(combine(noise_uncond, noise_cond, w).norm()) for w in guidance_scales]

guidance_norms = functools.partial(_norms, combine=lambda u, c, w: apply_cfg(u, c, w))
'''),
    "class_with_call": variant_with(cross_attention='''
class CrossAttention:
    def __call__(self, x_spatial, x_text, W_Q, W_K, W_V):
        scores = self.scores(W_Q(x_spatial), W_K(x_text))
        weights = scores.softmax(dim=-1)
        return weights @ W_V(x_text), weights

    @staticmethod
    def scores(q, k):
        return q @ k.T / k.shape[-1] ** 0.5

cross_attention = CrossAttention()
'''),
    "decorated": variant_with(before={"apply_cfg": ['''
import functools

def no_grad(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with torch.no_grad():
            return function(*args, **kwargs)
    return wrapper
''']}, apply_cfg='''
@no_grad
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond)
'''),
    "helper_module_written_from_the_notebook": variant_with(before={"cross_attention": ['''
%%writefile attention_constants.py
SCORE_EXPONENT = -0.5
SOFTMAX_AXIS = -1
''']}, cross_attention='''
import attention_constants as C

def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = torch.softmax(q @ k.T * k.shape[-1] ** C.SCORE_EXPONENT, dim=C.SOFTMAX_AXIS)
    return weights @ v, weights
'''),
    "global_set_in_a_later_cell": variant_with(apply_cfg='''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + guidance_scale * DIRECTION_SIGN * (noise_cond - noise_uncond)
''', after={"apply_cfg": ["DIRECTION_SIGN = 1.0  # set after the function, read when it runs"]}),
    "deleted_and_redefined": variant_with(apply_cfg='''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_cond + guidance_scale * (noise_cond - noise_uncond)   # first attempt, wrong
''', after={"apply_cfg": ["del apply_cfg", '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond)
''']}),
    "a_cell_errors_before_the_definition": variant_with(before={"apply_cfg": [
        "print(undefined_experiment_result)   # a leftover cell that raises NameError"]}),
    "lambda": variant_with(apply_cfg="apply_cfg = lambda noise_uncond, noise_cond, guidance_scale: "
                                     "noise_uncond + guidance_scale * (noise_cond - noise_uncond)\n"),
    "star_import_and_main_guard": variant_with(cross_attention='''
from math import *

if __name__ == "__main__":
    def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
        q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
        weights = torch.softmax(q @ k.T / sqrt(k.shape[-1]), dim=-1)
        return weights @ v, weights
'''),
    "class_attribute_settings": variant_with(before={"generate_guidance_sweep": ['''
class SweepSettings:
    generator_device = "cpu"
''']}, generate_guidance_sweep=GOOD_SWEEP.replace('device="cpu"', "device=SweepSettings.generator_device")),
    "function_table_from_a_comprehension": variant_with(apply_cfg='''
_formulas = {name: formula for name, formula in [
    ("cfg", lambda u, c, w: u + w * (c - u)),
    ("cond_only", lambda u, c, w: c),
]}

def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return _formulas["cfg"](noise_uncond, noise_cond, guidance_scale)
'''),
    "global_counter_and_helper_import_inside": variant_with(cross_attention='''
calls = 0

def cross_attention(x_spatial, x_text, W_Q, W_K, W_V):
    global calls
    import torch.nn.functional as functional
    calls += 1
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    weights = functional.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return weights @ v, weights
'''),
}

# Top-level code that would stop or flood a Jupyter "Run All": the grading run leaves such a cell
# out (or cuts its output) and the correct functions around it keep all their points.
TOP_LEVEL_SABOTAGE = {
    "exit_in_a_cell": variant_with(before={"apply_cfg": ["import os\nos._exit(0)"]}),
    "endless_loop_in_a_cell": variant_with(after={"cross_attention": ["while True:\n    pass"]}),
    "output_flood_in_a_cell": variant_with(after={"apply_cfg": ['import os\nprint("x" * 50_000_000)\n'
                                                                'os.write(1, b"y" * 50_000_000)']}),
    "input_transformer_and_exit": variant_with(extra_cells=[
        "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
        "import sys\nsys.exit('stop here')"]),
    "builtins_patched_at_top_level": variant_with(after={"guidance_norms": [
        "import builtins\nbuiltins.isinstance = lambda *args: False\nbuiltins.len = lambda *args: 0"]}),
}


FRAME_WRITER = '''
import fcntl, json, os, stat, struct
import numpy as np

def _reply_fd():
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                return fd
        except OSError:
            pass

def _send_raw(payload):
    fd = _reply_fd()
    data = struct.pack(">Q", len(payload)) + payload
    while data:
        data = data[os.write(fd, data):]

def _message(description, arrays=None, table=None):
    """A message laid out as the runner's (a JSON header, then each array's bytes at a multiple of 8); a str
    description is sent as it is (JSON the runner cannot make); `table` replaces the array table."""
    arrays = arrays or {}
    text = description if isinstance(description, str) else json.dumps(description)
    if table is None:
        table = json.dumps([[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()])
    header = ('{"description": ' + text + ', "arrays": ' + table + '}').encode()
    payload = struct.pack(">I", len(header)) + header
    for array in arrays.values():
        payload += bytes(-len(payload) % 8) + array.tobytes()
    return payload
'''


def _stub_with(prefix: str, function: str, signature: str) -> str:
    return f"{prefix}\ndef {function}({signature}):\n    raise NotImplementedError\n"


CA_ARGS = "x_spatial, x_text, W_Q, W_K, W_V"
CFG_ARGS = "noise_uncond, noise_cond, guidance_scale"

# name -> (variant, the most points it may earn honestly)
HIDDEN_CHECK = ROOT / "autograder" / "assignments" / ASSIGNMENT / "checks" / "test_apply_cfg.py"


def leaks_into_its_error(path: Path) -> Variant:
    """apply_cfg raises with the text of `path`: the grader's failure message would carry it to the student."""
    return Variant(cross_attention=None, apply_cfg=f'''
def apply_cfg({CFG_ARGS}):
    raise RuntimeError("LEAK " + open({str(path)!r}).read()[:300])
''')


HOSTILE = {
    "untouched_stubs": (Variant(cross_attention=None, apply_cfg=None), 0),
    "infinite_loops": (Variant(cross_attention=f"def cross_attention({CA_ARGS}):\n    while True:\n        pass\n",
                               apply_cfg=f'''
import signal
def apply_cfg({CFG_ARGS}):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        pass
'''), 0),
    "exits": (Variant(cross_attention=f"import sys\ndef cross_attention({CA_ARGS}):\n    sys.exit(0)\n",
                      apply_cfg=f"import os\ndef apply_cfg({CFG_ARGS}):\n    os._exit(0)\n"), 0),
    "memory_hog": (Variant(cross_attention=f'''
def cross_attention({CA_ARGS}):
    hog = []
    while True:
        hog.append(bytearray(256 * 1024 * 1024))
''', apply_cfg=None), 0),
    "forked_children": (Variant(cross_attention=f'''
import os, time
def cross_attention({CA_ARGS}):
    for _ in range(20):
        if os.fork() == 0:
            os.setsid()
            time.sleep(3600)
    raise NotImplementedError
''', apply_cfg=None), 0),
    "monkeypatch_top_level": (Variant(cross_attention=None, apply_cfg=f'''
import builtins
import numpy as np
np.allclose = np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: True
builtins.isinstance = lambda *args: True
def apply_cfg({CFG_ARGS}):
    return noise_uncond
'''), 1),
    "monkeypatch_defaults_decorators": (Variant(cross_attention=f'''
import builtins
def _patch(function):
    builtins.isinstance = lambda *args: True
    torch.allclose = lambda *args, **kwargs: True
    return function
@_patch
def cross_attention({CA_ARGS}, _=setattr(torch, "equal", lambda *a: True)):
    return None, None
''', apply_cfg=None), 0),
    "input_transformer": (Variant(cross_attention=None, apply_cfg=None, extra_cells=[
        "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])"]), 0),
    "always_equal_objects": (Variant(cross_attention=f'''
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    shape = (16, 6)
def cross_attention({CA_ARGS}):
    return Anything(), Anything()
''', apply_cfg=f'''
class Sneaky(torch.Tensor):
    def __eq__(self, other): return torch.ones((), dtype=torch.bool)
    def allclose(self, *a, **k): return True
def apply_cfg({CFG_ARGS}):
    return torch.zeros_like(noise_uncond).as_subclass(Sneaky)
'''), 0),
    "nan_outputs": (Variant(cross_attention=f'''
def cross_attention({CA_ARGS}):
    n, t = x_spatial.shape[0], x_text.shape[0]
    return torch.full((n, W_V.weight.shape[0]), float("nan")), torch.full((n, t), float("nan"))
''', apply_cfg=f"def apply_cfg({CFG_ARGS}):\n    return noise_uncond * float('nan')\n"), 0),
    "fake_score_output": (Variant(cross_attention=f'''
import json
def cross_attention({CA_ARGS}):
    print(json.dumps({{"score": 100, "tests": [{{"name": "cross_attention", "score": 10, "status": "passed"}}]}}))
    print("17 passed in 0.01s")
    raise NotImplementedError
''', apply_cfg=None), 0),
    "writes_results": (Variant(cross_attention=f'''
import os
def cross_attention({CA_ARGS}):
    for path in ["/autograder/results/results.json", "../results.json", "results.json",
                 os.environ.get("GRADER_OUT", "/tmp") + "/../grades.csv"]:
        try:
            with open(path, "w") as handle:
                handle.write('{{"score": 100}}')
        except OSError:
            pass
    raise NotImplementedError
''', apply_cfg=None), 0),
    "reads_solutions": (Variant(cross_attention=None, apply_cfg=f'''
import glob, json
def apply_cfg({CFG_ARGS}):
    for path in glob.glob("/**/solutions/**/*.ipynb", recursive=True) + glob.glob("/**/checks/test_*.py", recursive=True):
        text = open(path).read()
        if "def apply_cfg" in text:
            for cell in json.loads(text)["cells"]:
                source = "".join(cell["source"]).replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
                if "def apply_cfg" in source:
                    namespace = dict(globals())
                    exec(source, namespace)
                    return namespace["apply_cfg"](noise_uncond, noise_cond, guidance_scale)
    raise NotImplementedError
'''), 0),
    "leaks_hidden_checks": (leaks_into_its_error(HIDDEN_CHECK), 0),
    "network": (Variant(cross_attention=None, apply_cfg=f'''
import socket
def apply_cfg({CFG_ARGS}):
    socket.create_connection(("1.1.1.1", 80), timeout=2).close()
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond)
'''), 0),
    "huge_stdout": (Variant(cross_attention=f'''
import os
def cross_attention({CA_ARGS}):
    print("x" * 60_000_000)
    os.write(1, b"y" * 60_000_000)
    raise NotImplementedError
''', apply_cfg=None), 0),
    "pipeline_abuse": (Variant(cross_attention=None, apply_cfg=None, generate_guidance_sweep='''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    for request in [dict(num_inference_steps=10**6), dict(guidance_scale=float("nan")), dict(height=4096)]:
        try:
            pipe(prompt, generator=torch.Generator().manual_seed(seed), **request)
        except Exception:
            pass
    images = []
    while True:
        images.append(pipe(prompt * 1000, num_inference_steps=1).images[0])
'''), 0),
    # The grading run's own pipeline (pipeline_server.py): its sweep calls the pipeline honestly only if it can
    # see the server's key or socket from the sandbox, so any sight of either shows up as points.
    "reaches_for_the_pipeline_server": (Variant(cross_attention=None, apply_cfg=None, generate_guidance_sweep='''
import glob, os, tempfile
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    found = [value for name, value in os.environ.items() if name.startswith("AUTOGRADER_PIPELINE")]
    for environ in glob.glob("/proc/*/environ"):   # the grader's processes, if they can be seen and read
        try:
            found += [environ] if b"AUTOGRADER_PIPELINE" in open(environ, "rb").read() else []
        except OSError:
            pass
    for depth in range(1, 6):
        for folder in {"/tmp", tempfile.gettempdir()}:
            found += glob.glob(os.path.join(folder, *["*"] * (depth - 1), "pipeline.sock"))
    if not found:
        raise NotImplementedError("no way to the grader's pipeline from here")
    return [pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                 generator=torch.Generator().manual_seed(seed)).images[0] for w in guidance_scales]
'''), 0),
    "not_a_notebook": (Variant(raw_bytes=b"def apply_cfg(u, c, w):\n    return u + w * (c - u)\n", suffix=".py"), 0),
    # Answers written straight onto the reply pipe, around the runner: the grader must read them as the
    # student's failure, never crash or inflate them.
    "array_larger_than_its_bytes": (variant_with(cross_attention=FRAME_WRITER + f'''
def cross_attention({CA_ARGS}):
    # 16 MiB declared, 16 bytes sent: the grader must not read or allocate by the declared size
    _send_raw(_message({{"value": {{"kind": "tensor", "array": "a0"}}, "inputs_after": {{"kind": "list", "items": []}}}},
                       table='[["a0", "|u1", [16777216]]]') + bytes(16))
    os._exit(0)
'''), 20),
    "object_array_answer": (variant_with(cross_attention=FRAME_WRITER + f'''
def cross_attention({CA_ARGS}):
    _send_raw(_message({{"value": {{"kind": "tensor", "array": "a0"}}, "inputs_after": {{"kind": "list", "items": []}}}},
                       table='[["a0", "|O", [1]]]') + bytes(8))
    os._exit(0)
'''), 20),
    "answer_not_a_message": (variant_with(cross_attention=FRAME_WRITER + f'''
def cross_attention({CA_ARGS}):
    _send_raw(_message(5))
    os._exit(0)
'''), 20),
    "deeply_nested_answer": (variant_with(cross_attention=FRAME_WRITER + f'''
def cross_attention({CA_ARGS}):
    nested = '{{"kind": "list", "items": [' * 5000 + '{{"kind": "scalar", "value": 1}}' + ']}}' * 5000
    _send_raw(_message('{{"value": ' + nested + ', "inputs_after": {{"kind": "list", "items": []}}}}'))
    os._exit(0)
'''), 20),
    "one_dimensional_images": (variant_with(generate_guidance_sweep=FRAME_WRITER + '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    for w in guidance_scales:
        pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
             generator=torch.Generator(device="cpu").manual_seed(seed))
    items = [{"kind": "image/RGB", "array": "a%d" % i} for i in range(len(guidance_scales))]
    arrays = {"a%d" % i: np.arange(12, dtype=np.uint8) for i in range(len(guidance_scales))}
    _send_raw(_message({"value": {"kind": "list", "items": items}, "inputs_after": {"kind": "list", "items": []}},
                   arrays))
    os._exit(0)
'''), 24),
    "uint32_weights": (variant_with(cross_attention=f'''
def cross_attention({CA_ARGS}):
    q, k, v = W_Q(x_spatial), W_K(x_text), W_V(x_text)
    w = torch.softmax(q @ k.T / math.sqrt(k.shape[-1]), dim=-1)
    return w @ v, (w * 1000).to(torch.uint32)
'''), 27),
    "bad_generator_state": (variant_with(generate_guidance_sweep='''
class ShortState(torch.Generator):
    def get_state(self):
        return torch.zeros(7, dtype=torch.uint8)

def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    return [pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                 generator=ShortState(device="cpu").manual_seed(seed)).images[0] for w in guidance_scales]
'''), 20),
    "made_up_images": (variant_with(generate_guidance_sweep='''
from PIL import Image
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    return [Image.new("RGB", (64, 64), (40 * i, 120, 200)) for i, _ in enumerate(guidance_scales)]
'''), 20),
    "slow_trickle_of_messages": (variant_with(generate_guidance_sweep='''
import time
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    images = []
    for w in guidance_scales:
        time.sleep(3)   # each message comes inside the call timeout; together they do not
        images.append(pipe(prompt, guidance_scale=w, num_inference_steps=num_inference_steps,
                           generator=torch.Generator(device="cpu").manual_seed(seed)).images[0])
    return images
'''), 20),
    "fake_score_in_messages": (variant_with(cross_attention=f'''
def cross_attention({CA_ARGS}):
    raise RuntimeError("```\\n**Score: 27 / 27**\\n- **PASS** everything (27/27)\\n<script>alert(1)</script>")
'''), 20),
    "huge_and_nested_cells": (variant_with(extra_cells=["x = " + "9" * 5000, "y = " + "(" * 3000 + ")" * 3000,
                                                        "!echo hi\n" * 5400, "s = '" + "a" * 60_000 + "'"]
                                           + ["def broken(:"] * 3000), 30),
    "five_thousand_digit_notebook": (Variant(raw_bytes=b'{"cells": [], "nbformat": ' + b"9" * 5000 + b"}"), 0),
    "deeply_nested_notebook_file": (Variant(raw_bytes=b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 0),
    "many_one_line_statements": (variant_with(extra_cells=["a = 1\n" * 8000] * 40), 30),
    "empty_file": (Variant(raw_bytes=b""), 0),
    "garbage_json_notebook": (Variant(raw_bytes=b'{"cells": 5, "nbformat": 4}'), 0),
}


def build(variant: Variant, path: Path, release: Path = RELEASE_NOTEBOOK) -> Path:
    """Write the submission for `variant` at `path` (its suffix may change); return the file written."""
    path = path.with_suffix(variant.suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    if variant.raw_bytes is not None:
        path.write_bytes(variant.raw_bytes)
        return path
    notebook = copy.deepcopy(nbformat.read(release, as_version=4))
    for grade_id in ("cross_attention", "apply_cfg", "guidance_norms", "generate_guidance_sweep",
                     "guidance_sweep_images"):
        replacement = getattr(variant, grade_id)
        if replacement is not None:
            _source_cell(notebook, grade_id).source = replacement.strip("\n") + "\n"
    for grade_id, source in variant.locked.items():
        _source_cell(notebook, grade_id).source = source
    for grade_id, sources in variant.before.items():
        at = notebook.cells.index(_source_cell(notebook, grade_id))
        notebook.cells[at:at] = [nbformat.v4.new_code_cell(source) for source in sources]
    for grade_id, sources in variant.after.items():
        at = notebook.cells.index(_source_cell(notebook, grade_id)) + 1
        notebook.cells[at:at] = [nbformat.v4.new_code_cell(source) for source in sources]
    for source in variant.extra_cells:
        notebook.cells.append(nbformat.v4.new_code_cell(source))
    if variant.strip_metadata:
        for cell in notebook.cells:
            cell.metadata = {}
    if variant.reverse_cells:
        notebook.cells.reverse()
    path.write_text(json.dumps(notebook, indent=1))
    return path


def write_corpus(folder: Path, variants: dict) -> dict[str, Path]:
    return {name: build(entry[0] if isinstance(entry, tuple) else entry, folder / name / f"{ASSIGNMENT}.ipynb")
            for name, entry in variants.items()}


# Locked cells a student changed: every grading path runs the release's own instead, so these earn full marks.
TAMPERED = {
    "emptied_setup": variant_with(locked={"setup": "# nothing to set up\n"}),
    "setup_fakes_torch": variant_with(locked={"setup": "import types\ntorch = types.SimpleNamespace(__version__='0')\n"}),
}

SAMPLES_DIR = ROOT / "samples" / "submitted"
# The small class shipped in samples/ for the README's main command, in nbgrader's
# submitted/<student>/<assignment>/ layout: student id -> Lesson 1 variant, Lesson 2 cells (None: no Lesson 2).
SAMPLES = {
    "ada": (CORRECT["einsum"], CLIP_CORRECT["einsum_and_einops"]),
    "ben": (MISTAKES["cfg_common_mistake"][0], CLIP_MISTAKES["mask_not_dropped"][0]),
    "chen": (MISTAKES["softmax_wrong_axis"][0], None),
    "dana": (HOSTILE["untouched_stubs"][0], None),
    "eve": (HOSTILE["reads_solutions"][0], None),
    "finn": (HOSTILE["infinite_loops"][0], None),
}


def write_samples(folder: Path = SAMPLES_DIR) -> list[Path]:
    """samples/submitted/<student>/<assignment>/<assignment>.ipynb for both lessons."""
    written = []
    for student, (variant, clip_cells) in SAMPLES.items():
        written.append(build(variant, folder / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
        if clip_cells is not None:
            written.append(build_clip(clip_cells, folder / student / CLIP_ASSIGNMENT / f"{CLIP_ASSIGNMENT}.ipynb"))
    return written


if __name__ == "__main__":
    for path in write_samples():
        print(path.relative_to(ROOT))
