"""Runs inside the sandbox: defines the student's code, then answers calls until stdin closes.

Protocol (see wire.py): the first frame carries {"program", "function"}; the runner answers
{"ok": true} or {"error": ...}. Each later frame is a call {"args", "kwargs"} answered with
{"value"} or {"error"}. Everything here is untrusted once the student's code has run: the grader
checks every answer itself and only ever reads arrays from it.
"""
import io
import linecache
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402  (copied next to this file inside the sandbox)

OUTPUT_KEEP = 4096
SOURCE_NAME = "<submission>"


class CappedText(io.TextIOBase):
    """Keeps the first OUTPUT_KEEP characters a student prints and counts the rest."""

    def __init__(self):
        self.kept, self.dropped = [], 0
        self.size = 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = OUTPUT_KEEP - self.size
        if room > 0:
            self.kept.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def take(self):
        text = "".join(self.kept)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters of output dropped]"
        self.kept, self.dropped, self.size = [], 0, 0
        return text


AVAILABLE = []   # the packages a graded notebook may import, as the grader told us


def student_traceback(error):
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == SOURCE_NAME]
    lines = [f"  line {f.lineno}, in {f.name}: {(f.line or '').strip()}" for f in frames[-4:]]
    message = f"{type(error).__name__}: {error}"[:600]
    if isinstance(error, ImportError) and AVAILABLE:
        missing = (error.name or "").split(".")[0] or "that module"
        message += (f"\nthe grading environment has no {missing}; a graded notebook may import "
                    f"{', '.join(AVAILABLE)} (and Python's standard library)")
    return "\n".join(lines + [message])


def to_numpy(value):
    import numpy as np
    import torch

    if isinstance(value, torch.nn.Linear):
        return "linear", np.array(value.weight.detach().cpu().numpy(), copy=True)
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


CHANNEL = {}   # the protocol's file descriptors, set in main(); the pipeline proxy calls back through them


class GradingPipeline:
    """Stands in for the diffusers pipeline: the grader runs each call on the real one and sends the image.

    Supports what a text-to-image call needs: pipe(prompt, guidance_scale=..., num_inference_steps=...,
    generator=torch.Generator("cpu")...). The student's generator advances exactly as the real
    pipeline would advance it.
    """

    def __init__(self, height, width):
        import torch

        self.height, self.width = int(height), int(width)
        self.device = torch.device("cpu")

    def __call__(self, prompt=None, guidance_scale=7.5, num_inference_steps=50, generator=None, *,
                 height=None, width=None, num_images_per_prompt=1, output_type="pil", negative_prompt=None,
                 return_dict=True):
        import torch
        from PIL import Image

        if isinstance(prompt, (list, tuple)) and len(prompt) == 1:
            prompt = prompt[0]
        if isinstance(generator, (list, tuple)) and len(generator) == 1:
            generator = generator[0]
        if height not in (None, self.height) or width not in (None, self.width):
            raise ValueError(f"keep the pipeline's resolution ({self.height}x{self.width})")
        if num_images_per_prompt not in (None, 1) or negative_prompt is not None or output_type != "pil":
            raise ValueError("the grading pipeline makes one PIL image per call, without a negative prompt")
        if generator is not None and not (isinstance(generator, torch.Generator) and generator.device.type == "cpu"):
            raise TypeError("pass a CPU generator: torch.Generator(device='cpu').manual_seed(seed)")
        arrays = {} if generator is None else {"generator_state": generator.get_state().numpy().copy()}
        # Plain numbers only cross the boundary; the grader rejects anything else with a clear message.
        request = {"prompt": prompt, "guidance_scale": _plain_number(guidance_scale, float),
                   "num_inference_steps": _plain_number(num_inference_steps, int)}
        wire.write_frame(CHANNEL["replies"], wire.pack({"callback": "pipeline", "request": request}, arrays))
        answer, answer_arrays = wire.unpack(wire.read_frame(CHANNEL["requests"]))
        if "error" in answer:
            raise ValueError(answer["error"])
        if generator is not None:
            generator.set_state(torch.from_numpy(answer_arrays["generator_state"].copy()))
        image = Image.fromarray(answer_arrays["image"], "RGB")
        output = type("StableDiffusionPipelineOutput", (), {})()
        output.images, output.nsfw_content_detected = [image], None
        return output if return_dict else ([image], None)


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


def main():
    requests = os.dup(0)
    replies = os.dup(1)
    CHANNEL.update(requests=requests, replies=replies)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):            # raw writes to the standard streams go nowhere
        os.dup2(devnull, fd)
    captured = CappedText()
    sys.stdout = sys.stderr = captured
    sys.stdin = io.StringIO()

    def reply(description, arrays=None):
        description["output"] = captured.take()
        wire.write_frame(replies, wire.pack(description, arrays or {}))

    first = wire.read_frame(requests)
    if first is None:
        return
    setup, _ = wire.unpack(first)
    AVAILABLE[:] = [str(name) for name in setup.get("packages", [])]
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        import torch
        torch.set_num_threads(1)
        linecache.cache[SOURCE_NAME] = (len(setup["program"]), None, setup["program"].splitlines(True), SOURCE_NAME)
        exec(compile(setup["program"], SOURCE_NAME, "exec"), namespace)
        function = namespace.get(setup["function"])
        if not callable(function):
            raise NameError(f"{setup['function']} is not a function in the submission")
    except BaseException as error:  # SystemExit too: a student's sys.exit is their error, not ours
        reply({"error": student_traceback(error)})
        return
    reply({"ok": True})

    while True:
        frame = wire.read_frame(requests)
        if frame is None:
            return
        description, arrays = wire.unpack(frame)
        args = wire.decode(description["args"], arrays, from_array=from_array)
        kwargs = wire.decode(description["kwargs"], arrays, from_array=from_array)
        try:
            value = function(*args, **kwargs)
            out_arrays = {}
            encoded = wire.encode(value, out_arrays, to_numpy=to_numpy)
            inputs_after = wire.encode([args, kwargs], out_arrays, to_numpy=to_numpy)
        except BaseException as error:
            reply({"error": student_traceback(error)})
            continue
        reply({"value": encoded, "inputs_after": inputs_after}, out_arrays)


if __name__ == "__main__":
    main()
