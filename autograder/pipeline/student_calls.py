"""A sandboxed student's pipeline calls as the grader serves them: each one checked, run on the real pipeline
(sd_pipeline.generate, so that what was made before is answered from memory), recorded for the checks, and
answered with plain arrays. Inside the sandbox `pipe` is a proxy whose calls come back here."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from autograder.pipeline.sd_pipeline import ImageOptions, fresh_generator_state, generate, native_resolution

MAX_STEPS = 100
MAX_CALLS_PER_SWEEP = 16
# The pipeline work one sweep may ask for, in pixels x steps: 12 times a sweep of five 512x512 images at 12
# steps, or two 1024x1024 images at 100 steps. Workers share one pipeline: nobody's sweep may hold it for long.
MAX_PIXEL_STEPS = 2 * 10**8


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
