"""The grading run's one pipeline, served to its workers (autograder/pipeline/server.py), on the tiny real pipeline."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

import numpy as np
import pytest

from autograder.pipeline import server as pipeline_server
from autograder.pipeline import lanes as pipeline_lanes, sd_pipeline, served as served_end
from autograder.sandbox import start_slots
from tests.sandbox_processes import children, cpu_seconds, process_table, stat_fields
from tests.submissions import ASSIGNMENT, ROOT, build, variant_with

PROMPT = "a red apple"


@pytest.fixture
def server(tmp_path, tiny_pipeline_dir, monkeypatch):
    """A server for the tiny pipeline, and this test process set up as one of its workers."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    running = pipeline_server.Server(folder, sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"), False, {})
    for name, value in running.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(served_end, "_connection", None)
    monkeypatch.setattr(sd_pipeline, "_loaded", {})
    yield running
    running.close()


@pytest.fixture(scope="module")
def local_pipe(tiny_pipeline_dir):
    return sd_pipeline._load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))


def test_a_served_generation_is_the_pipelines_own_and_is_remembered_for_every_worker(server, tiny_pipeline_dir,
                                                                                      local_pipe, monkeypatch):
    served = sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))
    assert isinstance(served, served_end.ServedPipeline)
    assert served.resolution == sd_pipeline.native_resolution(local_pipe) == (64, 64)
    state = sd_pipeline.fresh_generator_state(5)
    made = sd_pipeline.generate(served, PROMPT, 3.0, 4, state)
    here = sd_pipeline._run_pipeline(local_pipe, PROMPT, 3.0, 4, state)
    np.testing.assert_array_equal(made.image, here.image)
    np.testing.assert_array_equal(made.final_state, here.final_state)
    assert not made.image.flags.writeable
    monkeypatch.setattr(served_end, "_connection", None)   # as another worker, on its own connection
    again = sd_pipeline.generate(served, PROMPT, 3.0, 4, state)
    assert again.seconds == made.seconds   # remembered with its original cost, not run again
    np.testing.assert_array_equal(again.image, made.image)


def test_what_cannot_load_is_reported_as_unavailable_and_the_server_goes_on(server, tiny_pipeline_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: a CUDA pipeline would load")
    with pytest.raises(sd_pipeline.PipelineUnavailable, match="no CUDA GPU"):
        sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cuda"))
    with pytest.raises(sd_pipeline.PipelineUnavailable, match="cannot load the pipeline"):
        sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir / "missing"), "cpu"))
    served = sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))
    assert sd_pipeline.generate(served, PROMPT, 1.0, 2, sd_pipeline.fresh_generator_state(1)).image.shape == (64, 64, 3)


@pytest.mark.quick
def test_a_connection_without_the_key_is_refused(server, tiny_pipeline_dir):
    served = sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))   # the server is up
    with pytest.raises(AuthenticationError):
        Client(server.environment[pipeline_server.ADDRESS], family="AF_UNIX", authkey=b"a guess")
    assert sd_pipeline.generate(served, PROMPT, 2.0, 2, sd_pipeline.fresh_generator_state(2)).image.shape == (64, 64, 3)


@pytest.mark.quick
def test_a_stopped_server_is_a_grader_problem(server, tiny_pipeline_dir):
    served = sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))
    server.process.kill()
    server.process.join()
    with pytest.raises(served_end.GraderFailure, match="pipeline server stopped"):
        sd_pipeline.generate(served, PROMPT, 2.0, 2, sd_pipeline.fresh_generator_state(2))


WORKER = """
import json, sys
from autograder.grading import worker
reply = worker.grade({"notebook": sys.argv[1], "assignment": sys.argv[2], "results_json": sys.argv[3],
                      "options": ["--sd-model", sys.argv[4], "--sd-device", "cpu"]})
print(json.dumps({"loaded": [m for m in ("diffusers", "transformers") if m in sys.modules], **reply}))
"""


@pytest.mark.parametrize("served", [True, False], ids=["with a server", "alone"])
def test_a_worker_with_a_server_grades_exercise_4_without_loading_diffusers(served, server, tiny_pipeline_dir,
                                                                            tmp_path, monkeypatch):
    if not served:
        for name in server.environment:
            monkeypatch.delenv(name)
    notebook = build(variant_with(), tmp_path / "correct.ipynb")
    results = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-c", WORKER, str(notebook), ASSIGNMENT, str(results),
                          str(tiny_pipeline_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["returncode"] == 0, run.stdout[-3000:]
    assert sum(check["score"] for check in json.loads(results.read_text())["checks"]) == 30
    assert answer["loaded"] == ([] if served else ["diffusers", "transformers"])


@pytest.mark.quick
def test_pipeline_calls_take_turns_so_a_greedy_worker_cannot_starve_a_classmate():
    lanes, order = pipeline_lanes.Lanes("the pipeline", 1), []   # one lane, as on a GPU

    def wait_until_queued(count):
        deadline = time.monotonic() + 10
        while len(lanes._queue) < count and time.monotonic() < deadline:
            time.sleep(0.001)

    def call(name):
        with lanes.lane():
            order.append(name)

    greedy = lanes.lane()
    greedy.__enter__()   # the greedy worker's call is running; two classmates ask in turn
    waiting = []
    for count, name in enumerate(("classmate 1", "classmate 2"), start=1):
        waiting.append(threading.Thread(target=call, args=(name,)))
        waiting[-1].start()
        wait_until_queued(count)
    greedy.__exit__(None, None, None)
    call("greedy again")   # asks again at once, as a loop of pipeline calls would
    for thread in waiting:
        thread.join(10)
    assert order == ["classmate 1", "classmate 2", "greedy again"]


@pytest.mark.quick
def test_on_a_cpu_each_worker_has_a_lane_so_a_large_call_holds_up_no_classmate(monkeypatch):
    monkeypatch.setattr(pipeline_lanes, "_copy_for_a_lane", lambda pipe: pipe + " (copy)")
    lanes = pipeline_lanes.Lanes("the pipeline", 2)
    holders, leave = [], threading.Event()

    def call():
        with lanes.lane() as pipe:
            holders.append(pipe)
            leave.wait(10)

    calls = [threading.Thread(target=call) for _ in range(3)]
    for thread in calls:
        thread.start()
    deadline = time.monotonic() + 10
    while len(holders) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # A large call (a 480x480 sweep, say) and a classmate's run side by side, each on its own pipeline
    # object; a third call waits for a free lane.
    assert sorted(holders) == ["the pipeline", "the pipeline (copy)"]
    leave.set()
    for thread in calls:
        thread.join(10)
    assert len(holders) == 3


def test_an_image_two_workers_ask_for_at_once_is_made_once(tiny_pipeline_dir, monkeypatch):
    pipe = sd_pipeline.load(sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"))
    runs, original = [], sd_pipeline._run_pipeline

    def slow_run(*args, **kwargs):
        runs.append(args[1])
        time.sleep(0.5)   # the second request arrives while the first is being made
        return original(*args, **kwargs)

    monkeypatch.setattr(sd_pipeline, "_run_pipeline", slow_run)
    state, answers = sd_pipeline.fresh_generator_state(5), []
    threads = [threading.Thread(target=lambda: answers.append(sd_pipeline.generate(pipe, "made once", 3.0, 2, state)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert runs == ["made once"] and len(answers) == 2 and answers[0] is answers[1]


@pytest.fixture
def server_with_lanes(tmp_path, tiny_pipeline_dir, request):
    """A server for two workers, as the grade command starts it: its lanes are processes, the run's sandboxes
    leave it a CPU while it loads. Parametrised indirectly with the reference calls it is to make once loaded."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    slots = start_slots.prepare(folder / "start-slots", 2, pipeline_loading=True)
    running = pipeline_server.Server(folder, sd_pipeline.PipelineSpec(str(tiny_pipeline_dir), "cpu"), False,
                                     {pipeline_lanes.LANES: "2", "OMP_NUM_THREADS": "2", **slots},
                                     reference_calls=getattr(request, "param", ()))
    yield running
    running.close()


def connect_as_a_worker(server):
    connection = served_end._connect(server.environment[pipeline_server.ADDRESS],
                                     bytes.fromhex(server.environment[pipeline_server.KEY]))
    connection.send(("load", server.spec))
    assert connection.recv()[0] == "ok"   # the pipeline is loaded: its lanes are forked
    return connection


def test_on_a_cpu_the_servers_lanes_are_processes_that_each_run_a_call_of_their_own(server_with_lanes, local_pipe):
    workers = [connect_as_a_worker(server_with_lanes) for _ in range(2)]
    lanes = children(process_table(), server_with_lanes.process.pid)
    assert len(lanes) == 2, "one lane process per worker"
    before = {pid: cpu_seconds(pid) for pid in lanes}
    calls = [(PROMPT, 4.0, 20, sd_pipeline.fresh_generator_state(seed), sd_pipeline.ImageOptions(height=480, width=480))
             for seed in (11, 12)]
    answers = [None, None]

    def ask(index):   # two workers' large calls at once: neither is remembered yet
        workers[index].send(("generate", server_with_lanes.spec, *calls[index]))
        answers[index] = workers[index].recv()

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for (kind, made), call in zip(answers, calls):
        assert kind == "ok", made
        here = made_here(local_pipe, call)
        np.testing.assert_array_equal(made.image, here.image)
        np.testing.assert_array_equal(made.final_state, here.final_state)
    # Each lane process made one of the two images (a 480x480 call at 20 steps is ~0.5 s of CPU).
    assert all(cpu_seconds(pid) - before[pid] > 0.2 for pid in lanes), {pid: cpu_seconds(pid) - before[pid] for pid in lanes}


def test_lane_processes_that_were_killed_cost_no_later_call(server_with_lanes, local_pipe):
    worker = connect_as_a_worker(server_with_lanes)
    lanes = children(process_table(), server_with_lanes.process.pid)
    assert len(lanes) == 2
    for lane in lanes:
        os.kill(lane, signal.SIGKILL)   # as the kernel's out-of-memory killer would, between two calls
    deadline = time.monotonic() + 30
    while not all(stat_fields(lane)[0] == "Z" for lane in lanes) and time.monotonic() < deadline:
        time.sleep(0.01)   # ended, not yet reaped: a lane that ends as a call reaches it costs that call
    for seed in (21, 22, 23):   # calls not made before: they must run somewhere
        call = (PROMPT, 2.0, 3, sd_pipeline.fresh_generator_state(seed))
        worker.send(("generate", server_with_lanes.spec, *call))
        kind, made = worker.recv()
        assert kind == "ok", made
        np.testing.assert_array_equal(made.image, made_here(local_pipe, call).image)


def made_here(pipe, call):
    """The image made in this process on one thread, as a lane makes it (outside a grade command's share)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return sd_pipeline.make_image(pipe, *call)
    finally:
        torch.set_num_threads(threads)


REFERENCE_CALLS = ((PROMPT, 3.0, 40, 31), (PROMPT, 5.0, 40, 32))   # ~0.3 s of CPU each


@pytest.mark.parametrize("server_with_lanes", [REFERENCE_CALLS], indirect=True)
def test_the_server_makes_the_reference_images_side_by_side_before_any_worker_asks(server_with_lanes, local_pipe):
    worker = connect_as_a_worker(server_with_lanes)   # it has asked for nothing but the pipeline
    lanes = children(process_table(), server_with_lanes.process.pid)
    assert len(lanes) == 2
    slots = Path(server_with_lanes.environment[pipeline_server.ADDRESS]).parent / "start-slots"
    assert sorted(path.name for path in slots.iterdir()) == ["slot-0", "slot-1"]   # loaded: both CPUs are the sandboxes'

    def idle_after_work():
        return all(stat_fields(pid)[0] == "S" and cpu_seconds(pid) > 0.1 for pid in lanes)
    deadline = time.monotonic() + 120
    while not (idle_after_work() and (time.sleep(0.1) or idle_after_work())) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Each lane made one of the two images (in one process they would run one after the other).
    assert idle_after_work(), {pid: (stat_fields(pid)[0], cpu_seconds(pid)) for pid in lanes}
    before = {pid: cpu_seconds(pid) for pid in lanes}
    for prompt, scale, steps, seed in REFERENCE_CALLS:
        call = (prompt, scale, steps, sd_pipeline.fresh_generator_state(seed))
        worker.send(("generate", server_with_lanes.spec, *call))
        kind, made = worker.recv()
        assert kind == "ok", made
        np.testing.assert_array_equal(made.image, made_here(local_pipe, call).image)
    # Answered from memory: no lane ran them again.
    assert all(cpu_seconds(pid) - before[pid] < 0.05 for pid in lanes), {pid: cpu_seconds(pid) - before[pid] for pid in lanes}
