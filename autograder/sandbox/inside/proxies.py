"""Runs inside the sandbox: the grader's stand-ins a student's function is handed, and the tensors,
layers and generators that cross the wire in either direction.

GradingPipeline, grading_model and grader_function answer each call by asking the grader over the
protocol's channel (CHANNEL, set by student_runner.serve): the student's code runs against the grader's
own pipeline, model and versions of the other graded functions.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402  (copied next to this file inside the sandbox)

def to_numpy(value):
    import numpy as np
    import torch

    if isinstance(value, torch.nn.Linear):
        return "linear", np.array(value.weight.detach().cpu().numpy(), copy=True)
    if isinstance(value, torch.Tensor) and value.device.type == "meta":   # a shape and a dtype, no values
        return f"meta/{str(value.dtype).removeprefix('torch.')}", np.array(tuple(value.shape), dtype=np.int64)
    if isinstance(value, torch.Tensor):
        tensor = torch.Tensor.detach(value).cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return "tensor", np.array(tensor.numpy(force=True), copy=True)
    if isinstance(value, np.generic):
        return "numpy_scalar", np.asarray(value)
    try:
        from PIL import Image
    except ImportError:
        return None
    if isinstance(value, Image.Image):
        return f"image/{value.mode}", np.asarray(value).copy()
    return None


CHANNEL = {}   # the protocol's file descriptors, set in serve(); the pipeline proxy calls back through them


class GradingPipeline:
    """Stands in for the diffusers pipeline: the grader runs each call on the real one and sends the image.

    It takes StableDiffusionPipeline.__call__'s arguments, in its order. Those that shape the image
    (prompt, size, steps, guidance, negative prompt, eta, generator) go to the grader's pipeline; the
    others are accepted at their defaults (a step callback is accepted and never called: it cannot change
    the image). The student's generator, or torch's global one when the call names none, advances
    exactly as the real pipeline would advance it.
    """

    def __init__(self, height, width):
        import torch

        self.height, self.width = int(height), int(width)
        self.device = torch.device("cpu")

    def __call__(self, prompt=None, height=None, width=None, num_inference_steps=50, timesteps=None, sigmas=None,
                 guidance_scale=7.5, negative_prompt=None, num_images_per_prompt=1, eta=0.0, generator=None,
                 latents=None, prompt_embeds=None, negative_prompt_embeds=None, ip_adapter_image=None,
                 ip_adapter_image_embeds=None, output_type="pil", return_dict=True, cross_attention_kwargs=None,
                 guidance_rescale=0.0, clip_skip=None, callback_on_step_end=None,
                 callback_on_step_end_tensor_inputs=("latents",), **kwargs):
        import torch
        from PIL import Image

        if isinstance(prompt, (list, tuple)) and len(prompt) == 1:
            prompt = prompt[0]
        if isinstance(negative_prompt, (list, tuple)) and len(negative_prompt) == 1:
            negative_prompt = negative_prompt[0]
        if isinstance(generator, (list, tuple)) and len(generator) == 1:
            generator = generator[0]
        unsupported = [name for name, value in (
            ("timesteps", timesteps), ("sigmas", sigmas), ("latents", latents), ("prompt_embeds", prompt_embeds),
            ("negative_prompt_embeds", negative_prompt_embeds), ("ip_adapter_image", ip_adapter_image),
            ("ip_adapter_image_embeds", ip_adapter_image_embeds), ("cross_attention_kwargs", cross_attention_kwargs),
            ("clip_skip", clip_skip)) if value is not None] + [name for name in kwargs]
        if guidance_rescale not in (0, 0.0):
            unsupported.append("guidance_rescale")
        if num_images_per_prompt not in (None, 1):
            unsupported.append("num_images_per_prompt (one image per call)")
        if output_type not in (None, "pil"):
            unsupported.append(f"output_type={output_type!r} (images come back as PIL images)")
        if unsupported:
            raise ValueError(f"the grading pipeline cannot honour {', '.join(unsupported)}: leave "
                             f"{'it' if len(unsupported) == 1 else 'them'} at the default")
        if generator is not None and not isinstance(generator, torch._C.Generator):   # torch.manual_seed's too
            raise TypeError("generator must be a torch.Generator, e.g. torch.Generator('cpu').manual_seed(seed)")
        # Without a generator a real pipeline draws its noise from torch's global one, as this call does:
        # torch.manual_seed(seed) makes it repeatable, and each call moves it on.
        state = torch.get_rng_state() if generator is None else generator.get_state()
        arrays = {"global_state" if generator is None else "generator_state": state.numpy().copy()}
        # Plain numbers and strings only cross the boundary; the grader rejects anything else clearly.
        request = {"prompt": prompt, "guidance_scale": _plain_number(guidance_scale, float),
                   "num_inference_steps": _plain_number(num_inference_steps, int),
                   "negative_prompt": negative_prompt, "eta": _plain_number(eta, float),
                   "height": None if height is None else _plain_number(height, int),
                   "width": None if width is None else _plain_number(width, int),
                   "generator_device": None if generator is None else getattr(generator, "requested_device",
                                                                              generator.device.type)}
        wire.write_frame(CHANNEL["replies"], wire.pack({"callback": "pipeline", "request": request}, arrays))
        answer, answer_arrays = wire.unpack(wire.read_frame(CHANNEL["requests"]))
        if "error" in answer:
            raise ValueError(answer["error"])
        if generator is None:
            torch.set_rng_state(torch.from_numpy(answer_arrays["global_state"].copy()))
        else:
            generator.set_state(torch.from_numpy(answer_arrays["generator_state"].copy()))
        image = Image.fromarray(answer_arrays["image"], "RGB")
        output = type("StableDiffusionPipelineOutput", (), {})()
        output.images, output.nsfw_content_detected = [image], None
        return output if return_dict else ([image], None)


def grading_model():
    """Stands in for a network model(x, t, context, mask): the grader computes each answer with its own
    model (and records the call), so the student's code cannot tell it from a real one except by speed."""
    import torch

    class GradingModel(torch.nn.Module):
        def forward(self, x, t, context, mask=None):
            if isinstance(x, torch.Tensor) and x.device.type == "meta":   # a device check: shapes only
                for name, value in (("t", t), ("context", context), ("mask", mask)):
                    if isinstance(value, torch.Tensor) and value.device != x.device:   # as a model on a GPU fails
                        raise RuntimeError(f"model(x, t, context, mask): {name} is on {value.device} but x is on "
                                           f"{x.device}: make new tensors on x's device (device=x.device)")
                return torch.empty_like(x)
            arrays = {}
            for name, value in (("x", x), ("t", t), ("context", context), ("mask", mask)):
                if name == "mask" and value is None:
                    continue
                if not isinstance(value, torch.Tensor):
                    raise TypeError(f"model(x, t, context, mask): {name} should be a tensor, not {type(value).__name__}")
                arrays[name] = to_numpy(value)[1]
            wire.write_frame(CHANNEL["replies"], wire.pack({"callback": "model", "request": {}}, arrays))
            answer, answer_arrays = wire.unpack(wire.read_frame(CHANNEL["requests"]))
            if "error" in answer:
                raise ValueError(answer["error"])
            return torch.from_numpy(answer_arrays["v"].copy()).to(x.dtype)

    return GradingModel()


def grader_function(name):
    """Stands in for one of the notebook's other graded functions while `name`'s neighbour is graded: the
    grader answers each call with its own version, so one mistake costs points once."""

    def trusted(*args, **kwargs):
        arrays = {}
        request = {"args": wire.encode(list(args), arrays, to_numpy=to_numpy),
                   "kwargs": wire.encode(dict(kwargs), arrays, to_numpy=to_numpy)}
        wire.write_frame(CHANNEL["replies"], wire.pack({"callback": f"trusted:{name}", "request": request}, arrays))
        answer, answer_arrays = wire.unpack(wire.read_frame(CHANNEL["requests"]))
        if "error" in answer:
            raise ValueError(answer["error"])
        return wire.decode(answer["value"], answer_arrays, from_array=from_array)

    trusted.__name__ = trusted.__qualname__ = name
    return trusted


def hide_the_gpu():
    """There is no GPU in the sandbox, also on a machine that has one: the sandbox's environment hides it
    (CUDA_VISIBLE_DEVICES is empty) and the syscall filter refuses its driver. Here torch says so without
    asking the driver, which a refused driver can answer by crashing, and a tensor asked for on CUDA is an
    error that says why (torch starts CUDA through torch.cuda._lazy_init). Yet the lesson makes its generator
    on the pipeline's device, and a GPU pipeline accepts torch.Generator("cuda"): here such a generator is
    a CPU one seeded the same, and the grading pipeline is told it was asked for on CUDA (the feedback
    says so)."""
    import torch

    if getattr(torch.Generator, "stands_in_for_cuda", False):
        return
    torch.cuda.is_available = lambda: False
    torch.cuda.device_count = lambda: 0

    def no_gpu_here(*args, **kwargs):
        raise RuntimeError("there is no GPU in the grading sandbox: make tensors on the CPU, or on the device of "
                           "the tensors your function is given")
    torch.cuda._lazy_init = no_gpu_here

    class Generator(torch.Generator):
        stands_in_for_cuda = True

        def __new__(cls, device="cpu"):
            requested = torch.device(device).type
            generator = super().__new__(cls, "cpu" if requested == "cuda" else device)
            generator.requested_device = requested
            return generator

        def __init__(self, device="cpu"):
            pass

    Generator.__name__ = Generator.__qualname__ = "Generator"
    torch.Generator = Generator


def _plain_number(value, kind):
    """A Python int or float from a number, a numpy scalar or a one-element tensor; None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        number = value.item() if hasattr(value, "item") else value
    except (RuntimeError, ValueError):
        return None
    if isinstance(number, int) or (kind is float and isinstance(number, float)):
        return kind(number)
    return None


def from_array(kind, array):
    import torch

    if kind == "pipeline":
        return GradingPipeline(*array.tolist())
    if kind == "model":
        return grading_model()
    if kind.startswith("meta/"):   # a tensor on PyTorch's meta device stands for one on a GPU
        return torch.empty(tuple(int(n) for n in array), dtype=getattr(torch, kind[5:]), device="meta")
    if kind == "generator":
        generator = torch.Generator()
        generator.set_state(torch.from_numpy(array.copy()))
        return generator
    if kind == "tensor":
        return torch.from_numpy(array.copy())
    if kind in ("linear", "affine"):   # weight (out, in); an affine layer's bias is the last column
        weight = torch.from_numpy(array.copy())
        bias = kind == "affine"
        if bias:
            weight, bias_values = weight[:, :-1], weight[:, -1]
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias, dtype=weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias:
                layer.bias.copy_(bias_values)
        return layer
    raise wire.WireError(f"unknown argument kind {kind}")
