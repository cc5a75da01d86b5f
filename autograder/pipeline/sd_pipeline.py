"""The text-to-image pipeline Exercise 4 is graded with; it lives in the trusted grading process.

Student code never touches it directly: inside the sandbox `pipe` is a proxy whose calls come back
here (sandbox.FunctionProcess callbacks), are checked, run on the real pipeline, recorded, and
answered with plain image arrays. The pipeline is loaded once per grading process and reused for
every submission that process grades; under the grade command, one process serves it to all the
workers (server.py; served.py is the workers' end).
"""
from __future__ import annotations

import concurrent.futures
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from autograder.pipeline import served
from autograder.pipeline.lanes import LaneProcess, lanes_of
from autograder.pipeline.spec import DEFAULT_MODEL, PipelineSpec, PipelineUnavailable, without_paths  # noqa: F401 (the checks' names)
from autograder.sandbox import cpu_share

MAX_STEPS = 100
MAX_CALLS_PER_SWEEP = 16
# The pipeline work one sweep may ask for, in pixels x steps: 12 times a sweep of five 512x512 images at 12
# steps, or two 1024x1024 images at 100 steps. Workers share one pipeline: nobody's sweep may hold it for long.
MAX_PIXEL_STEPS = 2 * 10**8


_loaded: dict[PipelineSpec, object] = {}
load_seconds: dict[PipelineSpec, float] = {}
# Only the pipeline server (server.py) has threads that share these: one loads a pipeline while the
# others wait for it; calls run in lanes (lanes.py), and a generation one thread is making is waited for,
# not made twice.
_loading = threading.Lock()


def load(spec: PipelineSpec):
    """The pipeline for `spec`, loaded on first use in this process (float16 on CUDA, safety checker off)."""
    with _loading:
        return _loaded[spec] if spec in _loaded else _load(spec)


def load_for_grading(spec: PipelineSpec, require_gpu: bool = False) -> tuple[object, PipelineSpec]:
    """The pipeline Exercise 4 is graded with, and its spec: `spec` where it can run, else the grader's own
    small CPU pipeline (stand_in.py), so that the sweep's contract is graded on every platform."""
    try:
        return load(spec), spec
    except PipelineUnavailable as reason:
        if require_gpu:
            raise RuntimeError(f"--require-gpu is set but {reason}") from None
    from autograder.pipeline import stand_in as sd_stand_in

    stand_in = PipelineSpec(model=str(sd_stand_in.folder()), device="cpu")
    return load(stand_in), stand_in


def _load(spec: PipelineSpec):
    if os.environ.get(served.ADDRESS):
        remote = served.ServedPipeline(spec)
        _loaded[spec], load_seconds[spec] = remote, remote.load_seconds
        return remote
    import torch

    if spec.on_gpu and not torch.cuda.is_available():
        raise PipelineUnavailable(f"no CUDA GPU ({spec.device}) on this grading machine; the GPU smoke test runs on a GPU runner")
    from diffusers import StableDiffusionPipeline

    started = time.perf_counter()
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            spec.model, dtype=torch.float16 if spec.on_gpu else torch.float32,
            safety_checker=None, requires_safety_checker=False)
    except Exception as error:  # offline with no cache, a wrong path: not the student's fault
        first_line = (str(error).splitlines() or [""])[0][:300]
        raise PipelineUnavailable(f"cannot load the pipeline {spec.label!r} here ({type(error).__name__}: "
                                  f"{without_paths(first_line)})") from None
    pipe.set_progress_bar_config(disable=True)
    _loaded[spec] = pipe.to(spec.device)
    load_seconds[spec] = time.perf_counter() - started
    return _loaded[spec]


def fresh_generator_state(seed: int) -> np.ndarray:
    import torch

    return torch.Generator(device="cpu").manual_seed(seed).get_state().numpy()


class Generation(NamedTuple):
    image: np.ndarray                 # (H, W, 3) uint8
    final_state: np.ndarray           # the generator's state afterwards
    seconds: float                    # what the pipeline took to make it
    threads: int                      # torch's threads at its last step (cpu_share.py)


_generations: OrderedDict[tuple, Generation] = OrderedDict()
_being_made: dict[tuple, concurrent.futures.Future] = {}
_remembering = threading.Lock()
MAX_REMEMBERED = 256


@dataclass(frozen=True)
class ImageOptions:
    """The other arguments of a pipeline call that change its image, normalised as the real pipeline treats
    them: no negative prompt is the empty one, no size is the model's own."""
    negative_prompt: str = ""
    eta: float = 0.0
    height: int | None = None
    width: int | None = None


def generate(pipe, prompt: str, guidance_scale: float, num_inference_steps: int, generator_state,
             options: ImageOptions = ImageOptions()) -> Generation:
    """One image, from a CPU generator in the given state so that CPU and GPU pipelines start from the
    same noise. The pipeline is a pure function of these arguments, so a call made before (by the
    reference, or by a student making the same calls as another) is answered from memory, with the
    seconds the original run took; the arrays handed out are read-only."""
    if isinstance(pipe, served.ServedPipeline):
        return pipe.generate(prompt, guidance_scale, num_inference_steps, generator_state, options)
    state = np.ascontiguousarray(generator_state, dtype=np.uint8)
    key = (id(pipe), prompt, guidance_scale, num_inference_steps, state.tobytes(), options)
    with _remembering:
        if key in _generations:
            _generations.move_to_end(key)
            return _generations[key]
        making = _being_made.get(key)
        mine = making is None
        if mine:
            making = _being_made[key] = concurrent.futures.Future()
    if not mine:   # another worker asked first (the reference images, above all): its answer is ours
        return making.result()
    try:
        generation = _run_pipeline(pipe, prompt, guidance_scale, num_inference_steps, state, options)
        generation.image.flags.writeable = False
        generation.final_state.flags.writeable = False
    except BaseException as error:
        with _remembering:
            del _being_made[key]
        making.set_exception(error)
        raise
    with _remembering:
        _generations[key] = generation
        if len(_generations) > MAX_REMEMBERED:
            _generations.popitem(last=False)
        del _being_made[key]
    making.set_result(generation)
    return generation


def make_ahead(pipe, calls) -> None:
    """Starts making these (prompt, guidance scale, steps, seed) calls' images in the background, each in the
    first free lane: a check that asks for one later gets it from memory, or waits for it to be done."""
    def make(prompt, guidance_scale, steps, seed):
        try:
            generate(pipe, prompt, guidance_scale, steps, fresh_generator_state(seed))
        except Exception:   # the check that asks for it meets the same problem and reports it
            pass

    for call in calls:
        threading.Thread(target=make, args=call, daemon=True).start()


def _run_pipeline(pipe, prompt, guidance_scale, num_inference_steps, state,
                  options: ImageOptions = ImageOptions()) -> Generation:
    with lanes_of(pipe).lane() as lane:
        if isinstance(lane, LaneProcess):
            return lane.run(prompt, guidance_scale, num_inference_steps, state, options)
        return make_image(lane, prompt, guidance_scale, num_inference_steps, state, options)


def make_image(pipe, prompt, guidance_scale, num_inference_steps, state,
               options: ImageOptions = ImageOptions()) -> Generation:
    """One call of the pipeline object itself, in this process (a lane's)."""
    import torch

    generator = torch.Generator(device="cpu")
    generator.set_state(torch.from_numpy(state.copy()))
    started = time.perf_counter()
    cpu_share.apply()
    result = pipe(prompt, guidance_scale=guidance_scale, num_inference_steps=num_inference_steps,
                  generator=generator, output_type="np", negative_prompt=options.negative_prompt or None,
                  eta=options.eta, height=options.height, width=options.width, callback_on_step_end=_take_cpu_share)
    image = np.nan_to_num(np.asarray(result.images[0], dtype=np.float32), nan=0.0)
    final_state = generator.get_state().numpy().copy()
    return Generation((np.clip(image, 0.0, 1.0) * 255).round().astype(np.uint8), final_state,
                      time.perf_counter() - started, torch.get_num_threads())


def _take_cpu_share(pipe, step, timestep, tensors):
    cpu_share.apply()   # CPUs freed by workers that ran out of submissions speed up the steps left
    return tensors


@dataclass
class PipelineCall:
    prompt: str
    guidance_scale: float
    num_inference_steps: int
    generator_state: np.ndarray | None   # None: the call named no generator (it drew from torch's global one)
    seconds: float
    image: np.ndarray | None = None   # what this call returned to the student's code
    threads: int = 1


@dataclass
class RecordingPipeline:
    """Serves a sandboxed student's pipeline calls: validates them, runs them, keeps a record."""
    pipe: object
    # On the CPU stand-in: the lesson model's own size, which code written for that model may pass explicitly
    # and which the stand-in answers at its own size, as the lesson model would at its own.
    stands_in_for: int | None = None
    calls: list[PipelineCall] = field(default_factory=list)
    serving_seconds: float = 0.0   # wall time spent here, remembered answers included
    pixel_steps: int = 0           # the work asked for so far (MAX_PIXEL_STEPS)
    notes: set[str] = field(default_factory=set)   # what the student should know about how their calls ran

    def __call__(self, request: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
        started = time.perf_counter()
        try:
            return self._serve(request, arrays)
        finally:
            self.serving_seconds += time.perf_counter() - started

    @property
    def pipeline_seconds(self) -> float:
        """What the calls cost the pipeline, whether they ran now or were remembered from an earlier run."""
        return sum(call.seconds for call in self.calls)

    def _serve(self, request: dict, arrays: dict[str, np.ndarray]) -> tuple[dict, dict[str, np.ndarray]]:
        if len(self.calls) >= MAX_CALLS_PER_SWEEP:
            return {"error": f"the pipeline was called more than {MAX_CALLS_PER_SWEEP} times in one sweep"}, {}
        prompt, scale, steps = request.get("prompt"), request.get("guidance_scale"), request.get("num_inference_steps")
        if not isinstance(prompt, str) or len(prompt) > 2000:
            return {"error": "pipe(prompt, ...) needs the prompt as a string"}, {}
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) \
                or abs(scale) > 1000:
            return {"error": "guidance_scale must be a finite number"}, {}
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            return {"error": f"num_inference_steps must be a whole number from 1 to {MAX_STEPS}"}, {}
        # A call names its generator or draws from torch's global one (proxies.GradingPipeline): one state.
        named, global_state = arrays.get("generator_state"), arrays.get("global_state")
        state = global_state if named is None else named
        if (named is None) == (global_state is None) or state.dtype != np.uint8 \
                or state.shape != fresh_generator_state(0).shape:
            return {"error": "the generator must be a CPU torch.Generator"}, {}
        options = self._options(request)
        if isinstance(options, str):
            return {"error": options}, {}
        height, width = options.height or self.resolution[0], options.width or self.resolution[1]
        cost = height * width * steps
        if self.pixel_steps + cost > MAX_PIXEL_STEPS:
            return {"error": f"this sweep asked the pipeline for more work than the grader allows one sweep "
                             f"({MAX_PIXEL_STEPS:.0e} pixels x steps): use the steps and sizes the exercise asks for"}, {}
        self.pixel_steps += cost
        if request.get("generator_device") == "cuda":
            self.notes.add("your generator was made on CUDA; the grading sandbox has no GPU, so it drew the same "
                           "seed's noise on the CPU (on a GPU, CUDA and CPU generators give different images)")
        if named is None:
            self.notes.add("your pipeline calls named no generator, so their noise came from torch's global "
                           "generator (seeded by torch.manual_seed), as in a real pipeline on the CPU")
        image, final_state, seconds, threads = generate(self.pipe, prompt, float(scale), steps, state, options)
        self.calls.append(PipelineCall(prompt, float(scale), steps, None if named is None else named.copy(), seconds,
                                       image, threads))
        return {"ok": True}, {"image": image, "generator_state" if named is not None else "global_state": final_state}

    def _options(self, request: dict) -> ImageOptions | str:
        """The call's image-changing options, or what is wrong with them."""
        negative, eta = request.get("negative_prompt"), request.get("eta", 0.0)
        if negative is not None and (not isinstance(negative, str) or len(negative) > 2000):
            return "negative_prompt must be a string"
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or not 0 <= eta <= 1:
            return "eta must be a number from 0 to 1"
        native_height, native_width = self.resolution
        sizes = []
        for name, value, native in (("height", request.get("height"), native_height),
                                    ("width", request.get("width"), native_width)):
            if value is None or value == native:
                sizes.append(None)
            elif value == self.stands_in_for:
                sizes.append(None)
                self.notes.add(f"your call asked for {name}={value}, the lesson model's own; the grader's stand-in "
                               f"made its own {native_height}x{native_width} images instead, as that model would "
                               "at its own size")
            elif isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 1024 or value % 8:
                return f"{name} must be a multiple of 8 up to 1024"
            else:
                sizes.append(value)
        return ImageOptions(negative or "", float(eta), *sizes)

    @property
    def resolution(self) -> tuple[int, int]:
        return native_resolution(self.pipe)


def native_resolution(pipe) -> tuple[int, int]:
    """The height and width the pipeline makes when the call names none."""
    if isinstance(pipe, served.ServedPipeline):
        return pipe.resolution
    size = pipe.unet.config.sample_size * getattr(pipe, "vae_scale_factor", 8)
    return size, size
