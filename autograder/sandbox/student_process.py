"""One submission's processes in the sandbox, as the grader sees them: the notebook's run and, forked
from it, a server per graded function. Every answer has a deadline; a late or unreadable one kills them.
"""
from __future__ import annotations

import os
import selectors
import signal
import time

import numpy as np

from autograder.assignments import STUDENT_PACKAGES
from autograder.sandbox.inside import wire
from autograder.sandbox.values import rebuild, trusted_to_numpy
from autograder.sandbox.zygote_host import Sandbox


class StudentError(Exception):
    """The student's code failed: raised, crashed, hung or returned something unusable."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


class NotDefined(StudentError):
    """The notebook's run left no such function."""


class NotebookProcess:
    """One submission's notebook, run top to bottom in the sandbox (notebook_run.py); it then serves
    one graded function at a time, each from a fresh copy of the notebook's state."""

    def __init__(self, cells: list[dict], sandbox: Sandbox):
        self.cells, self.sandbox, self.limits = cells, sandbox, sandbox.limits
        self.pid = None
        self.dead_reason = None
        self.notes: list[dict] = []   # cells that raised or were stopped during the run
        self.current: FunctionProcess | None = None
        self._closing: str | None = None   # a server told to close whose {"ended"} is still to be read

    @property
    def alive(self) -> bool:
        return self.pid is not None and self.dead_reason is None

    def start(self):
        self.pid, self._requests, self._replies = self.sandbox.spawn()
        self._send({"cells": self.cells, "packages": list(STUDENT_PACKAGES), "cell_seconds": self.limits.cell_seconds,
                    "run_seconds": self.limits.run_seconds}, {})
        # The run restarts itself without a cell that kills it, so allow it its budget twice over.
        answer, _ = self._receive(self.limits.startup_seconds + 2 * self.limits.run_seconds + 10,
                                  "running your notebook")
        if not isinstance(answer, dict) or answer.get("ok") is not True or not isinstance(answer.get("notes"), list):
            self._die("the process running your notebook sent an unreadable answer")
        self.notes = [n for n in answer["notes"][:200] if isinstance(n, dict) and isinstance(n.get("number"), int)]

    def open(self, function: str, trusted: list[str] = ()) -> FunctionProcess:
        """A server for `function`, with the functions named in `trusted` answered by the grader (handlers in
        FunctionProcess.callbacks["trusted:NAME"]); StudentError when the notebook does not define it."""
        self.close_function()
        if self._closing is not None:   # the last server's end (see close_function)
            self._await_end(self._closing)
        self._send({"open": function, "trusted": list(trusted)}, {})
        answer, _ = self._receive(self.limits.startup_seconds, f"starting {function}")
        if isinstance(answer, dict) and answer.get("ok") is True:
            self.current = FunctionProcess(self, function)
            return self.current
        self._await_end(function)
        if isinstance(answer, dict) and answer.get("missing"):
            raise NotDefined(f"the notebook does not define {function}() once all its cells have run: keep "
                             "the function's name and signature")
        raise StudentError(f"{function} could not be started ({str(answer)[:200]})")

    def close_function(self):
        """Ends the open function's server; its {"ended"} is read at the next open, so closing costs no wait."""
        if self.current is not None and self.alive:
            self._send({"close": True}, {})
            self.current, self._closing = None, self.current.function

    def close(self):
        """Closing the pipes ends the processes; whatever they left behind goes at the sandbox's next reset."""
        if self.pid is not None:
            os.close(self._requests)
            os.close(self._replies)
            self.pid = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _await_end(self, function: str):
        """The {"ended"} that follows every server; without it the notebook's process is not to be trusted."""
        self.current, self._closing = None, None
        answer, _ = self._receive(10.0, f"ending {function}")
        if not (isinstance(answer, dict) and isinstance(answer.get("ended"), str)):
            self._die("the process running your notebook sent an unreadable answer")

    def _send(self, description, arrays):
        try:
            wire.write_frame(self._requests, wire.pack(description, arrays))
        except (BrokenPipeError, OSError):
            pass  # the child is gone; _receive reports why

    def _receive(self, seconds: float, doing: str, limit: float | None = None):
        """One frame within `seconds`; `limit` is the limit to name when it does not come (default: seconds)."""
        if not self.alive:
            raise StudentError(self.dead_reason or "the process running your notebook has ended")
        fd = self._replies
        deadline = time.monotonic() + seconds
        buffer = bytearray()
        needed = wire.HEADER.size
        header_done = False
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(buffer) < needed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self._die(f"your code took longer than {limit or seconds:.0f} s while {doing} "
                              "(an endless loop, or far too much work?)")
                chunk = os.read(fd, min(1 << 20, needed - len(buffer)))
                if not chunk:
                    self._die(f"the process running your code stopped while {doing}")
                buffer += chunk
                if not header_done and len(buffer) >= wire.HEADER.size:
                    (length,) = wire.HEADER.unpack(bytes(buffer[:wire.HEADER.size]))
                    if length > wire.MAX_FRAME_BYTES:
                        self._die("your code returned more data than the grader accepts")
                    del buffer[:wire.HEADER.size]
                    needed, header_done = length, True
        try:
            return wire.unpack(buffer)
        except (wire.WireError, RecursionError) as error:
            self._die(f"the sandboxed process sent an unreadable answer ({error})")

    def _die(self, reason: str):
        """Kills the notebook's processes: the next function gets a fresh run."""
        self.dead_reason = reason
        if self.pid is not None:
            self.sandbox.kill(self.pid)
        self.close()
        raise StudentError(reason)


class GraderFailure(Exception):
    """The grader's own machinery failed while serving a student's call (a pipeline server gone, say)."""


# What a call-back handler raises on input the student's code made (an empty batch, odd shapes or fields);
# torch reports shape errors as RuntimeError. GraderFailure and running out of GPU memory stay grader errors.
HANDLER_REFUSALS = (ValueError, TypeError, IndexError, KeyError, RuntimeError, ArithmeticError, wire.WireError)


class FunctionProcess:
    """Calls to one graded function, served by a fork of the notebook's state."""

    def __init__(self, notebook: NotebookProcess, function: str):
        self.notebook, self.function, self.limits = notebook, function, notebook.limits
        self.dead_reason = None
        self.callbacks = {}   # name -> handler(request, arrays) -> (answer, arrays), for calls back from the sandbox
        self.last_inputs_after = None  # [args, kwargs] as the student's code left them after the last call

    @property
    def is_open(self) -> bool:
        return self.notebook.current is self and self.notebook.alive

    def call(self, *args, **kwargs):
        if self.dead_reason:
            raise StudentError(self.dead_reason)
        if not self.is_open:
            raise StudentError(f"{self.function} is not open")
        try:
            return self._call(args, kwargs)
        except StudentError as error:
            if not self.is_open and self.dead_reason is None:
                self.dead_reason = str(error)
            raise

    def _call(self, args, kwargs):
        notebook = self.notebook
        arrays: dict[str, np.ndarray] = {}
        description = {"args": wire.encode(list(args), arrays, to_numpy=trusted_to_numpy),
                       "kwargs": wire.encode(dict(kwargs), arrays, to_numpy=trusted_to_numpy)}
        notebook._send(description, arrays)
        # One budget per call, not per message: only the time spent waiting for the student's code counts
        # (the grader's own work on a call back, e.g. running the real pipeline, does not).
        budget = self.limits.call_seconds
        doing = f"running {self.function}"
        refused = None
        while True:
            waited = time.monotonic()
            answer, answer_arrays = notebook._receive(budget, doing, limit=self.limits.call_seconds)
            budget -= time.monotonic() - waited
            if not isinstance(answer, dict):
                notebook._die("the sandboxed process sent an unreadable answer (not a message)")
            if "ended" in answer:
                notebook.current = None
                self.dead_reason = _ended_description(answer["ended"], doing)
                raise StudentError(self.dead_reason)
            if "callback" not in answer:
                break
            handler = self.callbacks.get(answer["callback"]) if isinstance(answer["callback"], str) else None
            if handler is None:
                notebook._send({"error": "this object is not available here"}, {})
                continue
            request = answer.get("request") if isinstance(answer.get("request"), dict) else {}
            try:
                notebook._send(*handler(request, answer_arrays))
            except GraderFailure:
                raise
            except HANDLER_REFUSALS as error:
                if type(error).__name__ == "OutOfMemoryError":
                    raise   # the student's call was unusable: theirs to fix, not a grader error
                refused = refused or f"{type(error).__name__}: {str(error)[:200]}"
                notebook._send({"error": f"the grader could not use this call ({refused})"}, {})
        if refused:
            raise StudentError(f"{self.function} made a call the grader could not answer: {refused}")
        if "error" in answer:
            raise StudentError(f"{self.function} raised an error:\n{str(answer['error'])[:5000]}",
                               str(answer.get("output", ""))[:5000])
        try:
            value = wire.decode(answer["value"], answer_arrays, from_array=rebuild)
            self.last_inputs_after = wire.decode(answer["inputs_after"], answer_arrays, from_array=rebuild)
            return value
        except (wire.WireError, KeyError, TypeError, ValueError, RecursionError) as error:
            raise StudentError(f"{self.function} returned something the grader cannot read "
                               f"({str(error)[:200]})") from None


def _ended_description(status, doing: str) -> str:
    kind, _, number = str(status).partition(" ")
    if kind == "signal" and number.isdigit():
        try:
            name = signal.Signals(int(number)).name
        except ValueError:
            name = f"signal {number}"
        hint = " (probably out of memory)" if int(number) == signal.SIGKILL else ""
        return f"the process running your code was killed by {name}{hint} while {doing}"
    return (f"the process running your code exited (status {number[:8]}) while {doing}: "
            "do not call sys.exit, os._exit or exit() in your functions")
