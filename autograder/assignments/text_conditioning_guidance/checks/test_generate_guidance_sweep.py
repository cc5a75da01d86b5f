"""Hidden checks for Exercise 4: generate_guidance_sweep(pipe, prompt, guidance_scales, seed, num_inference_steps).

The student's function runs in its sandbox with a pipeline proxy; every pipeline call it makes runs
here on the real pipeline (bk-sdm-small on a GPU, or the model given with --sd-model / --sd-device),
so the checks see exactly which calls were made and compare the images with the trusted ones.
"""
import functools
import time
from dataclasses import dataclass

import numpy as np
import pytest

from autograder.assignments.text_conditioning_guidance.checks.sweep_inputs import MAIN, OTHER, Inputs
from autograder.pipeline import sd_pipeline
from autograder.pipeline import stand_in as sd_stand_in
from autograder.pipeline import student_calls
from autograder.grading.expectations import expect
from autograder.sandbox.student_process import StudentError
from autograder.sandbox.values import PipelineHandle, StudentImage

check = pytest.mark.check
BUDGET_SECONDS = 300.0


@dataclass
class Sweep:
    images: object
    calls: list
    seconds: float
    error: StudentError | None = None
    notes: tuple = ()
    inputs: Inputs = None

    def result(self):
        if self.error is not None:
            raise self.error
        return self.images


@pytest.fixture(scope="module")
def pipeline(request):
    """bk-sdm-small (or --sd-model) where it can run; else the grader's own small CPU pipeline."""
    spec = sd_pipeline.PipelineSpec(model=request.config.getoption("--sd-model"),
                                    device=request.config.getoption("--sd-device"))
    return sd_pipeline.load_for_grading(spec, request.config.getoption("--require-gpu"))


@pytest.fixture(autouse=True)
def say_which_pipeline(request, pipeline, first_sweep):
    _, spec = pipeline
    which = ("the grader's small CPU stand-in pipeline (no GPU or bk-sdm-small weights on this grader)"
             if sd_stand_in.is_stand_in(spec.model) else f"the pipeline {spec.label} on {spec.device}")
    request.node.user_properties.append(("note", f"graded with {which}"))
    request.node.user_properties += [("note", note) for note in first_sweep.notes]


def run_sweep(function, pipeline, inputs: Inputs = MAIN) -> Sweep:
    pipe, spec = pipeline
    stand_in = sd_stand_in.is_stand_in(spec.model)
    recorder = student_calls.RecordingPipeline(pipe, sd_stand_in.LESSON_MODEL_SIZE if stand_in else None)
    function.callbacks["pipeline"] = recorder
    started = time.perf_counter()
    images, error = None, None
    try:
        images = function(PipelineHandle(*recorder.resolution), inputs.prompt, list(inputs.scales), seed=inputs.seed,
                          num_inference_steps=inputs.steps)
    except StudentError as failure:
        error = failure
    # As if every pipeline call had run now, even those answered from memory (sd_pipeline.generate).
    seconds = time.perf_counter() - started - recorder.serving_seconds + recorder.pipeline_seconds
    return Sweep(images, recorder.calls, seconds, error, tuple(sorted(recorder.notes)), inputs)


@pytest.fixture(scope="module")
def sweep_function(student):
    return student.function("generate_guidance_sweep")


@pytest.fixture(scope="module")
def first_sweep(sweep_function, pipeline):
    return run_sweep(sweep_function, pipeline)


@pytest.fixture(scope="module")
def second_sweep(sweep_function, pipeline, first_sweep):
    return run_sweep(sweep_function, pipeline)


@pytest.fixture(scope="module")
def other_sweep(sweep_function, pipeline, second_sweep):
    return run_sweep(sweep_function, pipeline, OTHER)


@pytest.fixture(scope="module")
def both_sweeps(first_sweep, other_sweep):
    return first_sweep, other_sweep


def trusted_images(pipe, inputs: Inputs) -> list:
    """The trusted images (made once per grading process: sd_pipeline.generate remembers them)."""
    state = sd_pipeline.fresh_generator_state(inputs.seed)
    images = [sd_pipeline.generate(pipe, inputs.prompt, float(w), inputs.steps, state).image for w in inputs.scales]
    if any(image.max() < 8 for image in images):
        raise RuntimeError("the grading pipeline itself produced a black image (NaN in float16?)")
    return images


# Asked for when a check first needs them, after the student's sweep has passed what comes before. A run's
# pipeline server has made them as soon as it loaded (Assignment.reference_calls); a worker that holds the
# pipeline itself makes them here, so there a sweep that failed already costs no reference images.
@pytest.fixture(scope="module")
def reference_images(pipeline):
    return functools.cache(lambda: trusted_images(pipeline[0], MAIN))


@pytest.fixture(scope="module")
def other_reference_images(pipeline):
    return functools.cache(lambda: trusted_images(pipeline[0], OTHER))


def returned_images(sweep: Sweep) -> list[np.ndarray]:
    images = sweep.result()
    expect(isinstance(images, list), f"return a list of PIL images, not {type(images).__name__}")
    count = len(sweep.inputs.scales)
    expect(len(images) == count, f"for {count} guidance scales return {count} images, not {len(images)}")
    made = [call.image for call in sweep.calls]
    for index, image in enumerate(images):
        expect(isinstance(image, StudentImage), f"item {index} of the returned list is not a PIL image: "
                                                "keep pipe(...).images[0]")
        # Only what the pipeline made counts: an image drawn or edited by hand earns nothing here.
        expect(any(image.pixels.shape == pixels.shape and np.array_equal(image.pixels, pixels) for pixels in made),
               f"image {index} is not an image the pipeline returned: return pipe(...).images[0] as it is")
    return [image.pixels for image in images]


@check("generate_guidance_sweep: calls the pipeline once per guidance scale, in order", points=1, visible=True)
def test_one_call_per_scale(both_sweeps):
    for sweep in both_sweeps:
        sweep.result()
        scales, asked = [call.guidance_scale for call in sweep.calls], [float(w) for w in sweep.inputs.scales]
        expect(scales, "the pipeline was never called: call pipe(prompt, guidance_scale=w, ...) for every scale")
        expect(len(scales) == len(asked), f"the pipeline was called {len(scales)} times for {len(asked)} scales")
        expect(scales == asked, "the pipeline did not get the guidance scales in order: "
                                "pass guidance_scale=w for each w of guidance_scales")


@check("generate_guidance_sweep: passes the prompt and num_inference_steps through", points=1, visible=True)
def test_prompt_and_steps(both_sweeps):
    for sweep in both_sweeps:
        sweep.result()
        expect(sweep.calls, "the pipeline was never called")
        expect(all(call.prompt == sweep.inputs.prompt for call in sweep.calls),
               "pass the prompt argument to the pipeline")
        steps = sorted({call.num_inference_steps for call in sweep.calls})
        expect(steps == [sweep.inputs.steps], f"the pipeline ran with num_inference_steps={steps}, but the function "
                                              f"was asked for {sweep.inputs.steps}: pass num_inference_steps through")


@check("generate_guidance_sweep: gives every call a fresh generator seeded with seed", points=1)
def test_fresh_seeded_generators(both_sweeps):
    for sweep in both_sweeps:
        sweep.result()
        expect(sweep.calls, "the pipeline was never called")
        fresh = sd_pipeline.fresh_generator_state(sweep.inputs.seed)
        for index, call in enumerate(sweep.calls):
            expect(call.generator_state is not None, "pass generator=torch.Generator(device='cpu').manual_seed(seed) "
                                                     "to every pipeline call")
            expect(np.array_equal(call.generator_state, fresh),
                   "the generator of call %d was not freshly seeded with `seed`: create a new "
                   "torch.Generator(device='cpu').manual_seed(seed) inside the loop, for every scale" % (index + 1))


@check("generate_guidance_sweep: returns one RGB image per scale at the pipeline's resolution", points=1)
def test_returned_images(first_sweep, reference_images):
    images = returned_images(first_sweep)
    for index, image in enumerate(first_sweep.images):
        expect(image.mode == "RGB", f"image {index} has mode {image.mode}; return the pipeline's RGB images")
    expected_shape = reference_images()[0].shape
    for index, pixels in enumerate(images):
        expect(pixels.shape == expected_shape, f"image {index} is {pixels.shape[1]}x{pixels.shape[0]}, not the "
                                               f"pipeline's {expected_shape[1]}x{expected_shape[0]}")


@check("generate_guidance_sweep: no black or NaN images", points=1)
def test_no_black_images(first_sweep, reference_images):
    images = returned_images(first_sweep)
    reference_images()   # the grader's own pipeline makes no black image (else a grader error, not the student's)
    for index, pixels in enumerate(images):
        expect(pixels.size and pixels.max() >= 8, f"image {index} is black: return the generated images as they are")


@check("generate_guidance_sweep: the same seed gives identical images when run again", points=1)
def test_repeatable(first_sweep, second_sweep):
    first, second = returned_images(first_sweep), returned_images(second_sweep)
    expect(all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, second)),
           "running the sweep twice gave different images: seed a fresh generator with `seed` for every scale")


@check("generate_guidance_sweep: different guidance scales give different images", points=1)
def test_scales_differ(first_sweep):
    images = returned_images(first_sweep)
    scales = first_sweep.inputs.scales
    same = [f"{scales[i]} and {scales[i + 1]}" for i in range(len(images) - 1)
            if images[i].shape == images[i + 1].shape and np.array_equal(images[i], images[i + 1])]
    expect(not same, f"the images for guidance scales {', '.join(same)} are identical: use each scale")


@check("generate_guidance_sweep: each image equals the trusted pipeline's image for its scale", points=2)
def test_matches_reference(both_sweeps, reference_images, other_reference_images):
    for sweep, trusted in zip(both_sweeps, (reference_images, other_reference_images)):
        images = returned_images(sweep)
        for w, pixels, expected in zip(sweep.inputs.scales, images, trusted()):
            expect(pixels.shape == expected.shape and np.abs(pixels.astype(np.int16) - expected).mean() <= 1.0,
                   f"the image for guidance scale {w} differs from the pipeline's image for the same prompt, scale, "
                   f"seed and steps")


@check("generate_guidance_sweep: finishes within the time budget", points=1)
def test_time_budget(first_sweep, second_sweep, other_sweep, pipeline, record_property):
    first_sweep.result()
    expect(first_sweep.calls, "the pipeline was never called, so there is no sweep to time")
    _, spec = pipeline
    pipeline_seconds = sum(call.seconds for call in first_sweep.calls)
    per_call = ", ".join(f"w={call.guidance_scale:g}: {call.seconds:.2f} s" for call in first_sweep.calls)
    device = spec.device
    if device == "cpu":   # the share grows when other workers run out of submissions (cpu_share.py)
        threads = [call.threads for sweep in (first_sweep, second_sweep, other_sweep) for call in sweep.calls]
        low, high = min(threads), max(threads)   # over every sweep of this submission
        device += f" with {low if low == high else f'{low}-{high}'} thread{'s' if high > 1 else ''}"
    record_property("note", f"sweep took {first_sweep.seconds:.1f} s ({pipeline_seconds:.1f} s in the pipeline, "
                            f"{len(first_sweep.calls)} calls, {device}, {spec.label}; {per_call}); "
                            f"pipeline load {sd_pipeline.load_seconds.get(spec, 0.0):.1f} s once per grader")
    expect(first_sweep.seconds <= BUDGET_SECONDS, f"the sweep took {first_sweep.seconds:.0f} s, over the "
                                                  f"{BUDGET_SECONDS:.0f} s budget")
