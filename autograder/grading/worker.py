"""A long-lived grading worker: runs the hidden checks for one submission after another, in-process.

The grade command starts one worker per parallel slot and feeds it notebooks over a pipe (one JSON
message each; one back). Keeping the worker alive means torch and the checks (and, with one worker,
Exercise 4's pipeline) are loaded once per worker, not once per submission; every worker is forked
from one template that has imported torch and pytest already (template.py). Student code still never
runs here: each graded function runs in its own child of the worker's sandbox
(sandbox/zygote_host.py), which is wiped between submissions.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from autograder import assignments
from autograder.grading import template
from autograder.sandbox import cpu_share
from autograder.sandbox.inside import wipe
from autograder.sandbox.zygote_host import remove_leftovers


# Per submission, pytest's long tracebacks (seconds for a notebook of stubs) and its two forced
# garbage collections at exit (~0.6 s) and its log capture (a handler swap on every logger
# transformers made, for every test) cost more than grading; the log gets native tracebacks (of grader
# errors only: a student's failure is reported by its message, pytest_plugin.py).
SESSION_OPTIONS = ["-q", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p", "no:logging", "--tb=native"]


def session_arguments(request: dict) -> list[str]:
    assignment = assignments.get(request["assignment"])
    # One token per option (`--submission=PATH`): a separate PATH would also be collected as a test
    # path, with any conftest.py beside the notebook. No conftest is ever loaded: the plugin is named.
    return [str(assignment.checks_dir), *SESSION_OPTIONS, "--noconftest", "-p", "autograder.grading.pytest_plugin",
            f"--rootdir={assignment.checks_dir}", f"--assignment={assignment.name}",
            f"--submission={request['notebook']}", f"--results-json={request['results_json']}",
            *request.get("options", [])]


def grade(request: dict) -> dict:
    """One submission in a pytest session of its own."""
    import pytest

    return {"returncode": int(pytest.main(session_arguments(request)))}


def grade_all(receive, answer) -> None:
    """Every request `receive` gives, each answered once, one session per run of requests that fit one
    (session_of_submissions.py); a grader bug is reported for its submission and the worker goes on."""
    import pytest

    from autograder.grading.session_of_submissions import SessionOfSubmissions   # torch: the worker's, not the host's

    request = receive()
    while request is not None:
        session = SessionOfSubmissions(request, receive, answer)
        try:
            code = int(pytest.main(session_arguments(request), plugins=[session]))
            reply = {"returncode": code}
        except BaseException as error:  # a grader bug: report it and keep serving
            reply = {"returncode": -1, "error": f"{type(error).__name__}: {error}"}
        if session.answered:
            request = session.request
        else:   # the session ended before its loop (a usage or collection error): this request's answer
            answer(reply)
            request = receive()


# Set when this worker is to hold Exercise 4's pipeline itself (a run with one worker: no pipeline server).
PRELOAD_PIPELINE = "AUTOGRADER_PRELOAD_PIPELINE"


def preload_pipeline(model: str, device: str, require_gpu: bool) -> None:
    """Loads the pipeline in the background while the first notebook runs in the sandbox (diffusers' import
    alone is ~3.5 s of CPU); a check asking for it meanwhile waits for this load instead of starting its own."""
    from autograder.pipeline import sd_pipeline

    try:
        sd_pipeline.load_for_grading(sd_pipeline.PipelineSpec(model, device), require_gpu)
    except Exception:   # the check that needs it meets the same problem and reports it
        pass


def serve(requests, replies, environment: dict[str, str]) -> None:
    """A worker's life, in the process forked for it: grade each request, answer each, until the pipe closes."""
    template.become(environment, environment.get("AUTOGRADER_WORKER_LOG"))
    if PRELOAD_PIPELINE in environment:
        threading.Thread(target=preload_pipeline, args=json.loads(environment[PRELOAD_PIPELINE]), daemon=True).start()

    def receive():
        try:
            return json.loads(requests.recv_bytes())
        except EOFError:
            return None

    def answer(reply):
        sys.stdout.flush()
        replies.send_bytes(json.dumps(reply).encode())

    grade_all(receive, answer)
    # The sandboxes close in atexit handlers; after them nothing is left to do, and tearing down the
    # interpreter with torch loaded would take a second more of the grade command's time.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    os._exit(0)


def compute_environment(threads: int, cpu_share_file: Path | None) -> dict[str, str]:
    """What a grader process that runs torch is told of its CPU share (a worker, the pipeline server).

    Passive OpenMP threads sleep when they wait: on a machine that is busy anyway (a shared CI runner,
    a neighbour's job) spinning ones made a 64x64 stand-in image take 5 s instead of 0.3 s."""
    env = {"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": "PASSIVE"}
    if cpu_share_file:
        env[cpu_share.ENVIRONMENT] = str(cpu_share_file)
    return env


class GradingWorker:
    """The grade command's handle on one worker process; restarts it after a crash or a timeout."""

    def __init__(self, log_path: Path | None = None, threads: int = 1, cpu_share_file: Path | None = None,
                 run_environment: dict[str, str] | None = None, preload: tuple[str, str, bool] | None = None):
        self.log_path = log_path
        self.threads = threads   # the CPU share of this worker: oversubscribed OpenMP pools spin for minutes
        self.cpu_share_file = cpu_share_file   # where the grade command raises that share at the end (cpu_share.py)
        # what the run shares with all its workers: how to reach its pipeline (pipeline/server.py), its start
        # slots (sandbox/start_slots.py)
        self.run_environment = run_environment or {}
        self.preload = preload   # or the pipeline it loads itself as it starts: (model, device, require_gpu)
        self.process = None

    def _start(self):
        # Everything the worker's sandboxes leave on the host goes under names we know, so that even a
        # worker killed mid-submission leaves nothing behind (see close()).
        self.scratch = tempfile.mkdtemp(prefix="autograder-worker-")
        self.cgroup_prefix = f"autograder-{os.getpid()}-{uuid.uuid4().hex[:8]}-"   # which run made them, at a glance
        # Plugins installed beside the grader (pytest-randomly reorders and reseeds, others rewrite reports) never
        # join a grading session: the one it needs is named in its arguments.
        environment = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **compute_environment(self.threads, self.cpu_share_file),
                       **self.run_environment, "TMPDIR": self.scratch, "AUTOGRADER_CGROUP_PREFIX": self.cgroup_prefix}
        if self.log_path:
            environment["AUTOGRADER_WORKER_LOG"] = str(self.log_path)
        if self.preload:
            environment[PRELOAD_PIPELINE] = json.dumps(list(self.preload))
        context = template.context()
        their_requests, self.requests = context.Pipe(duplex=False)
        self.replies, their_replies = context.Pipe(duplex=False)
        self.process = context.Process(target=serve, args=(their_requests, their_replies, environment), daemon=True)
        self.process.start()
        their_requests.close()
        their_replies.close()

    def grade(self, notebook: Path, assignment: str, options: list[str], timeout: float) -> dict:
        """The outcome for one notebook (see report.py); never raises for a student's doing."""
        if self.process is None or not self.process.is_alive():
            self._start()
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
            results_path = Path(scratch) / "results.json"
            request = {"notebook": os.path.abspath(notebook), "assignment": assignment,
                       "results_json": str(results_path), "options": options}
            try:
                self.requests.send_bytes(json.dumps(request).encode())
            except OSError:
                pass   # it died since: _read_reply says so
            reply = self._read_reply(timeout)
            if reply is None:
                problem = f"grading took longer than {timeout:.0f} s" if self.process else "the grading worker died"
                self.close(wait=0)
            elif reply.get("returncode") in (0, 1) and results_path.exists():
                outcome = json.loads(results_path.read_text())
                outcome["grader_failed"] = any(c["outcome"] == "grader_error" for c in outcome["checks"])
                return outcome
            else:
                problem = f"pytest exited with {reply.get('returncode')} {reply.get('error', '')}".strip()
        return {"checks": [], "execution_time": round(time.time() - started, 3), "grader_failed": True,
                "error": "The grader itself failed on this submission; your instructor will regrade it.",
                "grader_log": problem + (f" (log: {self.log_path})" if self.log_path else "")}

    def _read_reply(self, timeout: float) -> dict | None:
        try:
            if not self.replies.poll(timeout):
                return None
            return json.loads(self.replies.recv_bytes())
        except (EOFError, OSError):   # the worker died
            self.process.join()
            self.process = None
            return None

    def close(self, wait: float = 30.0):
        """Ends the worker: it closes its sandboxes itself when its pipe closes; killed if it does not in `wait`."""
        process, self.process = self.process, None   # also called from another thread on Ctrl-C
        if process is not None:
            self.requests.close()
            process.join(wait)
            try:
                os.killpg(process.pid, signal.SIGKILL)   # the worker's session: its sandbox goes with it
            except ProcessLookupError:   # ended, or killed before it made its session
                process.kill()
            process.join()
            self.replies.close()
        scratch, self.scratch = getattr(self, "scratch", None), None
        if scratch:
            remove_leftovers(self.cgroup_prefix)
            wipe.remove(str(scratch))
