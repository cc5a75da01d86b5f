"""The text-to-image pipeline Exercise 4 is graded with; it lives in the trusted grading process.

Student code never touches it directly: inside the sandbox `pipe` is a proxy whose calls come back to
student_calls.py, which checks and records them and has them made here. Each image is remembered, so
a call made before is answered from memory. The pipeline is loaded once per grading process and reused for
every submission that process grades; under the grade command, one process serves it to all the
workers (server.py; served.py is the workers' end).
"""
from __future__ import annotations

import concurrent.futures
import gc
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from autograder.pipeline import served
from autograder.pipeline.lanes import LaneProcess, lanes_of
from autograder.pipeline.spec import DEFAULT_MODEL, PipelineSpec, PipelineUnavailable, without_paths  # noqa: F401 (the checks' names)
from autograder.sandbox import cpu_share



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
    started = time.perf_counter()
    collecting = gc.isenabled()
    # diffusers' import and the load make ~500,000 objects and hardly a cycle: the collections they set off
    # walked them all again and again, a fifth of the import (benchmarks/start_imports.py)
    gc.disable()
    try:
        from diffusers import StableDiffusionPipeline

        try:
            pipe = StableDiffusionPipeline.from_pretrained(
                spec.model, dtype=torch.float16 if spec.on_gpu else torch.float32,
                safety_checker=None, requires_safety_checker=False)
        except Exception as error:  # offline with no cache, a wrong path: not the student's fault
            first_line = (str(error).splitlines() or [""])[0][:300]
            raise PipelineUnavailable(f"cannot load the pipeline {spec.label!r} here ({type(error).__name__}: "
                                      f"{without_paths(first_line)})") from None
    finally:
        if collecting:
            gc.enable()
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


def native_resolution(pipe) -> tuple[int, int]:
    """The height and width the pipeline makes when the call names none."""
    if isinstance(pipe, served.ServedPipeline):
        return pipe.resolution
    size = pipe.unet.config.sample_size * getattr(pipe, "vae_scale_factor", 8)
    return size, size
