"""Pipeline calls side by side: one lane per grading worker on a CPU, one on a GPU, granted in the order asked."""
from __future__ import annotations

import copy
import ctypes
import os
import signal
import threading
from collections import deque
from contextlib import contextmanager
from multiprocessing.connection import Pipe

LANES = "AUTOGRADER_PIPELINE_LANES"   # set by the grade command for its server: one lane per worker
PR_SET_PDEATHSIG = 1


class Lanes:
    """Lanes of one pipeline that run calls side by side, granted in the order asked for.

    A pipeline keeps per-call state (its scheduler's timesteps, the call's guidance scale), so two calls
    at once need two pipeline objects; they share the model's modules, whose forward passes keep none.
    On a CPU a call uses one worker's share of the cores, so each worker gets a lane and a student asking
    for large images slows nobody else's calls. A GPU runs one call at a time (its memory holds one
    call's activations). Granted in order: each worker has at most one call waiting, so a student
    asking for many images delays a classmate's call by one of theirs at most (threading.Lock would
    let a releasing thread win again). A lane is a pipeline object run by the asking thread, or the
    pipeline server's LaneProcess."""

    def __init__(self, pipe, count: int = 1, lanes: list | None = None):
        self.pipe = pipe
        self._free = lanes or [pipe] + [_copy_for_a_lane(pipe) for _ in range(count - 1)]
        self._turns = threading.Condition()
        self._queue: deque = deque()

    @contextmanager
    def lane(self):
        ticket = object()
        with self._turns:
            self._queue.append(ticket)
            self._turns.wait_for(lambda: self._free and self._queue[0] is ticket)
            self._queue.popleft()
            lane = self._free.pop()
            self._turns.notify_all()
        lane = self._usable(lane)
        try:
            yield lane
        finally:
            lane = self._usable(lane)   # a lane that ended during this call failed it, and no other
            with self._turns:
                self._free.append(lane)
                self._turns.notify_all()

    def _usable(self, lane):
        """`lane`, or in place of a lane process that has ended (killed: out of memory?) one in this process."""
        return _copy_for_a_lane(self.pipe) if isinstance(lane, LaneProcess) and lane.ended() else lane


class LaneProcess:
    """A fork of the pipeline server made once its pipeline is loaded: it shares the model's memory and runs
    the calls handed to it. In threads of one process, diffusers' Python between a tiny model's steps
    holds the interpreter's lock, so two calls at once took as long as one after the other."""

    def __init__(self, pipe, make_image):
        """Fork now: call only while this process runs no other thread of ours and torch has used one thread
        (an OpenMP pool that ran before a fork hangs the child's first parallel operation)."""
        self.connection, theirs = Pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 0
            try:
                self.connection.close()
                ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)   # the server's end is ours
                _serve(theirs, pipe, make_image)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.status = None   # its wait status once it has ended

    def ended(self) -> bool:
        if self.status is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:   # reaped already
                pid, status = self.pid, -1
            self.status = status if pid else None
        return self.status is not None

    def run(self, *call):
        """`make_image(pipe, *call)` in the lane's process."""
        try:
            self.connection.send(call)
            kind, answer = self.connection.recv()
        except (EOFError, OSError):
            raise RuntimeError("a pipeline lane process ended during a call") from None
        if kind == "error":
            raise RuntimeError(answer)
        return answer


def _serve(connection, pipe, make_image):
    while True:
        try:
            call = connection.recv()
        except EOFError:   # the server has ended
            return
        try:
            answer = "ok", make_image(pipe, *call)
        except Exception as error:   # a grader problem, reported to the worker whose call it was
            answer = "error", f"{type(error).__name__}: {error}"
        connection.send(answer)


def _copy_for_a_lane(pipe):
    flags = {"requires_safety_checker": False} if "requires_safety_checker" in pipe.config else {}
    lane = type(pipe)(**{**pipe.components, "scheduler": copy.deepcopy(pipe.scheduler)}, **flags)
    lane.set_progress_bar_config(disable=True)
    return lane


_lanes: dict[int, Lanes] = {}
_making = threading.Lock()


def on_gpu(pipe) -> bool:
    return getattr(getattr(pipe, "device", None), "type", "cpu") == "cuda"


def wanted() -> int:
    """How many lanes the grade command asked its server for (LANES): one per worker."""
    return max(1, int(os.environ.get(LANES, "1")))


def fork_processes(pipe, make_image) -> None:
    """The pipeline server's lanes for its loaded CPU pipeline: one process each (see LaneProcess.__init__)."""
    with _making:
        _lanes[id(pipe)] = Lanes(pipe, lanes=[LaneProcess(pipe, make_image) for _ in range(wanted())])


def lanes_of(pipe) -> Lanes:
    """The lanes of a loaded pipeline: the server's processes, else one on a GPU and one per worker on a CPU."""
    with _making:
        if id(pipe) not in _lanes:
            _lanes[id(pipe)] = Lanes(pipe, 1 if on_gpu(pipe) else wanted())
        return _lanes[id(pipe)]
