"""Exercise 4's trusted pipeline: remembered generations and what the recorder reports about them."""
import numpy as np
import pytest

from autograder.pipeline import sd_pipeline, student_calls

pytestmark = pytest.mark.quick   # in the inner-loop subset: -m quick

PROMPT = "a red apple"


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    return sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))


def test_loading_leaves_the_collector_as_it_found_it(tiny_pipeline_dir, tmp_path, monkeypatch):
    # The load runs without the garbage collector (it only cost time there): afterwards the process collects as
    # usual, whether the load worked or not; the pipeline server, which turned it off itself, keeps it off.
    import gc

    monkeypatch.setattr(sd_pipeline, "_loaded", {})
    young = gc.get_stats()[0]["collections"]   # (the libraries' own gc.collect() calls are full collections)
    assert sd_pipeline._load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu")) is not None
    assert gc.get_stats()[0]["collections"] <= young + 3   # those that follow turning it back on; about 15 with it on
    assert gc.isenabled()
    with pytest.raises(sd_pipeline.PipelineUnavailable):
        sd_pipeline._load(sd_pipeline.PipelineSpec(str(tmp_path / "no pipeline here"), "cpu"))
    assert gc.isenabled()
    gc.disable()
    try:
        sd_pipeline._load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_repeated_call_is_remembered_with_its_original_cost(pipe):
    state = sd_pipeline.fresh_generator_state(7)
    first = sd_pipeline.generate(pipe, PROMPT, 3.0, 4, state)
    again = sd_pipeline.generate(pipe, PROMPT, 3.0, 4, state.copy())
    assert again is first                        # not run a second time
    assert first.seconds > 0
    assert not first.image.flags.writeable and not first.final_state.flags.writeable
    # The remembered answer is what the pipeline makes: run it for real and compare.
    fresh = sd_pipeline._run_pipeline(pipe, PROMPT, 3.0, 4, state)
    assert np.array_equal(fresh.image, first.image) and np.array_equal(fresh.final_state, first.final_state)


def test_a_call_without_a_generator_draws_from_the_global_state_the_sandbox_sent(pipe):
    # As a real pipeline draws from torch's global generator: one global state gives one image (so
    # torch.manual_seed(seed) before each call is repeatable), and the state handed back has moved on.
    state = sd_pipeline.fresh_generator_state(5)
    request = {"prompt": PROMPT, "guidance_scale": 3.0, "num_inference_steps": 4}
    recorder = student_calls.RecordingPipeline(pipe)
    answer, arrays = recorder(request, {"global_state": state})
    named = sd_pipeline._run_pipeline(pipe, PROMPT, 3.0, 4, state)
    assert answer == {"ok": True} and set(arrays) == {"image", "global_state"}
    assert np.array_equal(arrays["image"], named.image) and np.array_equal(arrays["global_state"], named.final_state)
    assert recorder.calls[0].generator_state is None   # the checks still see that no generator was named
    assert any("global generator" in note for note in recorder.notes)
    _, moved_on = recorder(request, {"global_state": arrays["global_state"]})
    assert not np.array_equal(moved_on["image"], arrays["image"])
    for neither_or_both in ({}, {"global_state": state, "generator_state": state}):
        assert "error" in student_calls.RecordingPipeline(pipe)(request, neither_or_both)[0]


@pytest.mark.parametrize("change", ["seed", "scale", "steps", "prompt"])
def test_any_other_argument_is_a_new_generation(pipe, change):
    arguments = dict(prompt=PROMPT, guidance_scale=3.0, num_inference_steps=4,
                     generator_state=sd_pipeline.fresh_generator_state(7))
    base = sd_pipeline.generate(pipe, *arguments.values())
    if change == "seed":
        arguments["generator_state"] = sd_pipeline.fresh_generator_state(8)
    elif change == "scale":
        arguments["guidance_scale"] = 5.0
    elif change == "steps":
        arguments["num_inference_steps"] = 3
    else:
        arguments["prompt"] = "a green pear"
    other = sd_pipeline.generate(pipe, *arguments.values())
    assert other is not base and not np.array_equal(other.image, base.image)


def test_the_recorder_reports_pipeline_seconds_even_for_remembered_calls(pipe):
    state = sd_pipeline.fresh_generator_state(11)
    made = sd_pipeline.generate(pipe, PROMPT, 2.0, 5, state)
    recorder = student_calls.RecordingPipeline(pipe)
    answer, arrays = recorder({"prompt": PROMPT, "guidance_scale": 2.0, "num_inference_steps": 5},
                              {"generator_state": state})
    assert answer == {"ok": True}
    assert np.array_equal(arrays["image"], made.image)
    assert np.array_equal(arrays["generator_state"], made.final_state)
    assert recorder.pipeline_seconds == made.seconds
    assert recorder.serving_seconds < made.seconds   # answered from memory


def test_the_stand_in_is_built_identically_wherever_the_grader_is_installed(tmp_path, monkeypatch):
    from autograder.pipeline import stand_in as sd_stand_in

    folders = []
    for name in ("one", "two"):
        monkeypatch.setenv("AUTOGRADER_STAND_IN", str(tmp_path / name))
        folders.append(sd_stand_in.folder())
    weights = [sorted(f.rglob("*.safetensors")) for f in folders]
    assert weights[0] and [p.relative_to(folders[0]) for p in weights[0]] == [p.relative_to(folders[1]) for p in weights[1]]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(*weights))
    assert sd_stand_in.is_stand_in(str(folders[1]))


class _Accepted(Exception):
    """The grader's pipeline got as far as sending the call to the grader."""


@pytest.mark.parametrize("arguments", [
    {}, {"negative_prompt": "", "eta": 0.0, "output_type": "pil", "callback_on_step_end": None},
    {"height": 480, "width": 480}, {"height": 500}, {"eta": 1.5}, {"prompt_embeds": 0}, {"latents": 0},
    {"num_images_per_prompt": 2}, {"output_type": "np"}, {"guidance_rescale": 0.7}, {"not_an_argument": 1},
    {"generator": "seed 7"}, {"generator": [None]},
])
def test_the_notebooks_recording_pipeline_refuses_what_the_grader_refuses(arguments, monkeypatch):
    """Students learn before submitting which pipeline arguments the grading run cannot honour."""
    import nbformat
    import torch

    from autograder.sandbox.inside import proxies
    from tests.submissions import RELEASE_NOTEBOOK

    cell = next(c for c in nbformat.read(RELEASE_NOTEBOOK, as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "test_generate_guidance_sweep")
    namespace = {"torch": torch}
    exec(cell.source[:cell.source.index("_pipe = ")], namespace)
    call = {"prompt": "a red bicycle", "guidance_scale": 5.0, "num_inference_steps": 4,
            "generator": torch.Generator("cpu").manual_seed(7), **arguments}
    try:
        namespace["_RecordingPipeline"]()(**call)
        visible = None
    except AssertionError as error:
        visible = str(error)

    def sent(*_):
        raise _Accepted

    monkeypatch.setattr(proxies.wire, "write_frame", sent)
    monkeypatch.setitem(proxies.CHANNEL, "replies", None)
    try:
        proxies.GradingPipeline(512, 512)(**call)
    except _Accepted:
        hidden = None
    except (ValueError, TypeError) as error:
        hidden = str(error)
    if "eta" in arguments or "height" in arguments:   # checked by the grader once the call reaches it
        hidden = student_calls.RecordingPipeline._options(type("P", (), {"resolution": (512, 512), "stands_in_for": None})(),
                                                              {"eta": 0.0, "height": None, **arguments})
        hidden = hidden if isinstance(hidden, str) else None
    assert (visible is None) == (hidden is None), (arguments, visible, hidden)


def test_one_sweep_cannot_hold_the_shared_pipeline_past_its_budget(pipe, monkeypatch):
    monkeypatch.setattr(student_calls, "MAX_PIXEL_STEPS", 64 * 64 * 2 * 2)   # two 64x64 calls of 2 steps
    recorder = student_calls.RecordingPipeline(pipe)
    call = {"prompt": PROMPT, "guidance_scale": 2.0, "num_inference_steps": 2}
    noise = {"global_state": sd_pipeline.fresh_generator_state(3)}
    assert recorder(call, noise)[0] == {"ok": True}
    assert recorder({**call, "height": 128, "width": 64}, noise)[0]["error"].startswith("this sweep asked the pipeline")
    assert recorder(call, noise)[0] == {"ok": True}           # a refused call costs nothing
    assert "more work than the grader allows" in recorder(call, noise)[0]["error"]
    assert len(recorder.calls) == 2


@pytest.mark.quick
@pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")   # the checks' own mark, outside a grading run
def test_the_images_a_server_makes_ahead_are_the_very_calls_the_checks_make(monkeypatch):
    import threading
    import time

    from autograder import assignments
    from autograder.assignments.text_conditioning_guidance.checks import sweep_inputs
    from autograder.assignments.text_conditioning_guidance.checks import test_generate_guidance_sweep as checks

    calls, lock = [], threading.Lock()

    def record(pipe, prompt, guidance_scale, steps, state, options=sd_pipeline.ImageOptions()):
        with lock:   # the memory's key (sd_pipeline.generate), value and type
            calls.append((prompt, type(guidance_scale), guidance_scale, steps, np.asarray(state).tobytes(), options))
        return sd_pipeline.Generation(np.full((4, 4, 3), 200, np.uint8), state, 0.0, 1)

    monkeypatch.setattr(sd_pipeline, "generate", record)
    for inputs in (sweep_inputs.MAIN, sweep_inputs.OTHER):
        checks.trusted_images("the pipeline", inputs)
    by_the_checks, calls[:] = sorted(calls, key=repr), []
    sd_pipeline.make_ahead("the pipeline", assignments.get("text_conditioning_guidance").reference_calls)
    deadline = time.monotonic() + 10
    while len(calls) < len(by_the_checks) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(by_the_checks) == 8 and sorted(calls, key=repr) == by_the_checks
