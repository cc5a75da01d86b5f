"""Pipeline calls side by side: one lane per grading worker on a CPU, one on a GPU, granted in the order asked."""
from __future__ import annotations

import copy
import os
import threading
from collections import deque
from contextlib import contextmanager

LANES = "AUTOGRADER_PIPELINE_LANES"   # set by the grade command for its server: one lane per worker


class Lanes:
    """Copies of one pipeline that run calls side by side, granted in the order asked for.

    A pipeline keeps per-call state (its scheduler's timesteps, the call's guidance scale), so two calls
    at once need two pipeline objects; they share the model's modules, whose forward passes keep none.
    On a CPU a call uses one worker's share of the cores, so each worker gets a lane and a student asking
    for large images slows nobody else's calls. A GPU runs one call at a time (its memory holds one
    call's activations). Granted in order: each worker has at most one call waiting, so a student
    asking for many images delays a classmate's call by one of theirs at most (threading.Lock would
    let a releasing thread win again)."""

    def __init__(self, pipe, count: int = 1):
        self._free = [pipe] + [_copy_for_a_lane(pipe) for _ in range(count - 1)]
        self._turns = threading.Condition()
        self._queue: deque = deque()

    @contextmanager
    def lane(self):
        ticket = object()
        with self._turns:
            self._queue.append(ticket)
            self._turns.wait_for(lambda: self._free and self._queue[0] is ticket)
            self._queue.popleft()
            pipe = self._free.pop()
            self._turns.notify_all()
        try:
            yield pipe
        finally:
            with self._turns:
                self._free.append(pipe)
                self._turns.notify_all()


def _copy_for_a_lane(pipe):
    flags = {"requires_safety_checker": False} if "requires_safety_checker" in pipe.config else {}
    lane = type(pipe)(**{**pipe.components, "scheduler": copy.deepcopy(pipe.scheduler)}, **flags)
    lane.set_progress_bar_config(disable=True)
    return lane


_lanes: dict[int, Lanes] = {}
_making = threading.Lock()


def lanes_of(pipe) -> Lanes:
    """The lanes of a loaded pipeline: one on a GPU, one per worker (LANES) on a CPU."""
    with _making:
        if id(pipe) not in _lanes:
            on_gpu = getattr(getattr(pipe, "device", None), "type", "cpu") == "cuda"
            _lanes[id(pipe)] = Lanes(pipe, 1 if on_gpu else max(1, int(os.environ.get(LANES, "1"))))
        return _lanes[id(pipe)]
