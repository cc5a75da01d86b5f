"""Sandboxes start at most one per CPU, one fewer while the pipeline server loads (autograder/sandbox/start_slots.py)."""
import os
import subprocess
import sys
import threading

import pytest

from autograder.sandbox import start_slots
from tests.submissions import ROOT

HOLD_A_SLOT = """
import sys
from autograder.sandbox import start_slots
with start_slots.slot():
    print("holding", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def slots(tmp_path, monkeypatch):
    def make(cpus, pipeline_loading):
        environment = start_slots.prepare(tmp_path / "start-slots", cpus, pipeline_loading)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return environment
    return make


@pytest.fixture
def holder():
    """Another process of the run (a worker) that holds a slot until the test lets it go or kills it."""
    started = []

    def start():
        process = subprocess.Popen([sys.executable, "-c", HOLD_A_SLOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, cwd=ROOT)
        assert process.stdout.readline().strip() == "holding"
        started.append(process)
        return process
    yield start
    for process in started:
        process.kill()
        process.wait()


def entering_in_a_thread():
    """A sandbox start in this process: the event is set once it holds a slot."""
    entered, leave = threading.Event(), threading.Event()

    def start():
        with start_slots.slot():
            entered.set()
            leave.wait(30)
    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    return entered, leave, thread


def starts_at_once() -> bool:
    """Whether a sandbox start in this process gets a slot within seconds (it leaves it again)."""
    entered, leave, thread = entering_in_a_thread()
    try:
        return entered.wait(5)
    finally:
        leave.set()
        thread.join(5)


@pytest.mark.quick
def test_outside_a_grading_run_a_sandbox_starts_at_once(monkeypatch):
    monkeypatch.delenv(start_slots.ENVIRONMENT, raising=False)
    assert starts_at_once()


@pytest.mark.quick
def test_while_the_pipeline_loads_the_sandboxes_leave_it_a_cpu(slots, holder, tmp_path):
    slots(2, pipeline_loading=True)
    start_slots.loading_in(tmp_path / "start-slots", os.getpid())   # a live server: this process plays it
    holder()   # one worker's sandbox is starting: the other CPU is the loading pipeline server's
    entered, leave, thread = entering_in_a_thread()
    assert not entered.wait(0.5)
    start_slots.pipeline_loaded()   # as the server does once its pipeline is loaded
    assert entered.wait(5)   # the second CPU is free for sandboxes; the first start still holds its own
    leave.set()
    thread.join(5)


@pytest.mark.quick
def test_a_slot_is_free_again_when_its_sandbox_has_started_or_its_holder_died(slots, holder):
    slots(2, pipeline_loading=False)
    first, second = holder(), holder()   # both CPUs taken
    entered, leave, thread = entering_in_a_thread()
    assert not entered.wait(0.5)
    second.kill()   # a worker killed while its sandbox started: the kernel lets go of its lock
    second.wait()
    assert entered.wait(5)
    leave.set()
    thread.join(5)
    first.stdin.close()   # the first one's sandbox is ready: it leaves its slot
    assert first.wait(10) == 0
    entered, leave, thread = entering_in_a_thread()
    entered_too, leave_too, thread_too = entering_in_a_thread()
    assert entered.wait(5) and entered_too.wait(5)   # two CPUs, two starts at once
    leave.set()
    leave_too.set()


@pytest.mark.quick
def test_with_one_cpu_a_loading_pipeline_does_not_stop_every_sandbox(slots):
    slots(1, pipeline_loading=True)
    assert starts_at_once()


@pytest.mark.quick
def test_a_server_that_died_loading_leaves_the_sandboxes_every_cpu(slots, holder, tmp_path):
    slots(2, pipeline_loading=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()   # as a server killed for its memory while it imported diffusers
    start_slots.loading_in(tmp_path / "start-slots", gone.pid)
    holder()
    assert starts_at_once()


@pytest.mark.quick
def test_a_server_killed_loading_and_not_yet_reaped_leaves_the_sandboxes_every_cpu(slots, holder, tmp_path):
    slots(2, pipeline_loading=True)
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start_slots.loading_in(tmp_path / "start-slots", server.pid)
        holder()
        entered, leave, thread = entering_in_a_thread()
        assert not entered.wait(0.5)   # loading: one CPU stays the server's
        server.kill()   # the grade command, its parent, reaps it only when the run ends: a zombie until then
        assert os.waitid(os.P_PID, server.pid, os.WEXITED | os.WNOWAIT).si_pid == server.pid
        assert entered.wait(5)
        leave.set()
        thread.join(5)
    finally:
        server.kill()
        server.wait()


@pytest.mark.quick
def test_a_run_whose_slots_are_gone_starts_its_sandbox_at_once(slots, tmp_path):
    slots(2, pipeline_loading=True)
    for path in (tmp_path / "start-slots").iterdir():
        path.unlink()
    assert starts_at_once()
