"""Runs inside the sandbox: the student's notebook, top to bottom, as Jupyter's "Run All" would.

The code a graded function sees is what the notebook defines once every cell has run, so three
processes share the work (all forks of the zygote's child, in one process group):

* the supervisor has run no student code. It forks the run and watches its progress. A cell that
  ends its process (os._exit, a signal, the memory limit) or overruns its time is left out, and the
  run starts again from the supervisor's clean state without it. Once the notebook's time budget is
  spent, each further cell gets only a moment (enough to define functions) before it is left out.
* the run executes the cells in order in one namespace. A cell that raises keeps what it did
  before the error, as in Jupyter, and the run goes on with the next cell (Jupyter would stop;
  here a mistake in one exercise must not cost the others). Every such cell is reported.
* once the run is done it holds the notebook's state and, for each graded function the grader
  opens, forks a server from that state (student_runner.serve), so no function's calls can change
  what another one sees.

Protocol with the grader (wire.py frames):
    -> {"cells": [{"number", "source"}], "packages", "cell_seconds", "run_seconds"}
    <- {"ok": true, "notes": [{"number", "error"}]}           once the notebook has run
    -> {"open": NAME, "trusted": [OTHER...]} ... (student_runner.serve) ... -> {"close": true}
    <- {"ended": "exit N" | "signal N"}                        after every server, closed or dead
"""
import builtins
import gc
import json
import linecache
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import processes  # noqa: E402  (copied next to this file inside the sandbox)
import student_runner  # noqa: E402
import wire  # noqa: E402

MAX_ATTEMPTS = 20          # runs restarted after fatal cells; beyond that no cell runs
OVER_BUDGET_SECONDS = 2.0  # what a cell may take once the notebook's time budget is spent
OVER_BUDGET_SHARE = 0.5    # all such cells together, as a share of the budget: then the rest stay unrun
MAX_NOTES_BYTES = 64_000


def cell_name(number):
    return f"<code cell {number}>"


def run_cells(cells, left_out, notes, progress, last_start):
    """Executes the cells not left out; reports each start and, at the end, the notes, on `progress`.
    No cell starts after `last_start`: the notebook's wall time is bounded whatever its cells do."""
    namespace = {"__name__": "__main__", "__builtins__": builtins,
                 "display": lambda *objects, **options: None}   # Jupyter's display() shows nothing here
    sys.path.insert(0, os.getcwd())   # as in Jupyter: modules the notebook writes (%%writefile) import
    for cell in cells:
        number = cell["number"]
        if number in left_out:
            continue
        if time.monotonic() > last_start:
            notes.append({"number": number, "stopped": "the notebook's time for grading was used up before this "
                                                       "cell (make slow cells quick, or keep long runs out of them)"})
            continue
        os.write(progress, f"start {number}\n".encode())
        source = cell["source"]
        linecache.cache[cell_name(number)] = (len(source), None, source.splitlines(True), cell_name(number))
        error = None
        try:
            exec(compile(source, cell_name(number), "exec"), namespace)
        except BaseException as raised:   # SystemExit and KeyboardInterrupt too: Jupyter reports and goes on
            error = raised
        # What this file relies on stays as Python made it (unlike in Jupyter, a patched builtin does
        # not outlive its cell), and the cell's output goes nowhere.
        student_runner.restore_builtins()
        student_runner.discard_output()
        if error is not None:
            try:
                notes.append({"number": number, "error": student_runner.student_traceback(error)})
            except Exception:
                notes.append({"number": number, "error": "the error could not be described"})
    os.write(progress, b"done " + json.dumps(notes).encode()[:MAX_NOTES_BYTES] + b"\n")
    return namespace


def watch(progress, cell_seconds, deadline):
    """('done', notes) when the run finished, else ('stopped', cell number, the seconds it was allowed).
    Once the notebook's budget is spent, each further cell gets only a moment: enough for definitions."""
    buffer, current, cell_started, allowed = b"", None, time.monotonic(), cell_seconds
    with selectors.DefaultSelector() as selector:
        selector.register(progress, selectors.EVENT_READ)
        while True:
            remaining = cell_started + allowed - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return "stopped", current, allowed
            chunk = os.read(progress, 1 << 16)
            if not chunk:
                return "stopped", current, None
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                word, _, rest = line.partition(b" ")
                if word == b"done":
                    try:
                        notes = json.loads(rest.decode())
                        return "done", [n for n in notes if isinstance(n, dict)] if isinstance(notes, list) else []
                    except ValueError:
                        return "done", []
                if word == b"start" and rest.isdigit():
                    current, cell_started = int(rest), time.monotonic()
                    allowed = cell_seconds if cell_started < deadline else OVER_BUDGET_SECONDS
            if len(buffer) > MAX_NOTES_BYTES * 2:
                return "stopped", current, None


def stop_run(pid):
    """Kills the run and everything it started; returns how the run itself ended."""
    processes.kill_group(pid)
    try:
        _, status = os.waitpid(pid, 0)
        ended = processes.describe(status)
    except ChildProcessError:
        ended = "gone"
    processes.kill_all_children()
    return ended


def stop_note(allowed, status):
    if allowed is None:
        return f"it ended the process running the notebook ({status}): do not call os._exit or kill the kernel"
    return f"it ran longer than {allowed:g} s (an endless loop, or training left running?)"


def main():
    requests, replies = student_runner.take_streams()
    first = wire.read_frame(requests)
    if first is None:
        return
    setup, _ = wire.unpack(first)
    student_runner.AVAILABLE[:] = [str(name) for name in setup.get("packages", [])]
    cells = [c for c in setup.get("cells", []) if isinstance(c, dict)]
    cell_seconds, run_seconds = float(setup["cell_seconds"]), float(setup["run_seconds"])
    deadline = time.monotonic() + run_seconds
    last_start = deadline + OVER_BUDGET_SHARE * run_seconds
    numbers = [c["number"] for c in cells]
    left_out, notes = set(), []
    processes.become_subreaper()
    for attempt in range(MAX_ATTEMPTS + 1):
        if attempt == MAX_ATTEMPTS:
            left_out.update(numbers)
        read_end, write_end = os.pipe()
        handover, receiver = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                # The cells never hold the grader's channel: code they run cannot answer in the grader's
                # place. The run gets it from the supervisor once every cell is done.
                for fd in (read_end, requests, replies):
                    os.close(fd)
                handover.close()
                namespace = run_cells(cells, left_out, notes, write_end, last_start)
                os.close(write_end)
                _, fds, _, _ = socket.recv_fds(receiver, 16, 2)
                receiver.close()
                holder(namespace, *fds)
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        os.close(write_end)
        receiver.close()
        outcome = watch(read_end, cell_seconds, deadline)
        os.close(read_end)
        if outcome[0] == "done":
            wire.write_frame(replies, wire.pack({"ok": True, "notes": outcome[1]}, {}))
            socket.send_fds(handover, [b"channel"], [requests, replies])
            handover.close()
            break
        handover.close()
        _, number, allowed = outcome
        status = stop_run(pid)
        if number is None:   # died before its first cell: nothing to leave out, nothing will go better
            left_out.update(numbers)
        else:
            left_out.add(number)
            notes.append({"number": number, "stopped": stop_note(allowed, status)})
    os.close(requests)
    os.close(replies)
    try:   # the run holds the notebook now; stay until it ends so the grader's kill reaches it
        while True:
            os.wait()
    except ChildProcessError:
        pass


def holder(namespace, requests, replies):
    """After the run: one server per function the grader opens, each a fresh fork of this state."""
    gc.freeze()   # as the zygote does: the servers' collections leave the notebook's objects alone
    while True:
        frame = wire.read_frame(requests)
        if frame is None:
            return
        request, _ = wire.unpack(frame)
        name = request.get("open") if isinstance(request, dict) else None
        if not isinstance(name, str):
            continue
        trusted = [str(other) for other in request.get("trusted", [])]
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                student_runner.serve(namespace, name, requests, replies, trusted)
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
        wire.write_frame(replies, wire.pack({"ended": processes.describe(status)}, {}))
