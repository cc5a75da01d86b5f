"""Student code runs here: a bubblewrap sandbox holding a zygote that forks one child per submission.

The sandbox sees the system's libraries and the Python environment read-only, an empty working
directory, /tmp and /dev/shm (small tmpfs each), no network, no processes outside it and none of
the grader's files (only the runner files and a copy of the course library the notebooks import are
mounted). Inside, the zygote has imported torch once; each submission gets a fresh fork of it, which
runs the notebook and forks a server per graded function from the result (notebook_run.py), so a
process costs milliseconds instead of a Python start and a torch import (over a second). Between two
submissions the zygote kills every process and empties every writable place (zygote.py says how),
and a sandbox that cannot do that is replaced.

Resource limits bound each child's memory, file size and CPU time and, where the host lets us
create cgroups, the sandbox's processes and memory. The grader talks to each child through its own
pipes (wire.py) with a deadline on every answer; on a deadline the child is killed.

Where bubblewrap cannot create namespaces (Docker's default profile, as on Gradescope), the same
zygote runs without them ("uid" mode, uid_confinement.py): each child drops to a user id of its
sandbox's own, under the same syscall filter (which then also keeps it off the network) and limits.
Where neither is possible the grader refuses to run student code, unless the instructor asks for
"none" (unconfined) explicitly.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder.sandbox import cgroups
from autograder.release import student_library
from autograder.sandbox import uid_confinement
from autograder.sandbox.inside import wire
from autograder.assignments import STUDENT_PACKAGES

INSIDE_DIR = Path(__file__).resolve().parent / "inside"
RUNNER_FILES = tuple(sorted(p.name for p in INSIDE_DIR.glob("*.py")))   # all the sandbox sees of us
PACKAGE_DIR = Path(__file__).resolve().parent.parent
MODES = ("auto", "bwrap", "uid", "none")
ZYGOTE_BYTES = 1 << 30   # torch imported, before any child
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    startup_seconds: float = 120.0     # importing torch under load can take a while
    call_seconds: float = 30.0
    cell_seconds: float = 10.0         # one cell of the notebook's grading run
    run_seconds: float = 60.0          # the whole grading run, after which each cell gets 2 s
    memory_bytes: int = 4 << 30
    file_bytes: int = 64 << 20
    tmp_bytes: int = 64 << 20
    cpu_seconds: int = 600
    processes: int = 64


class StudentError(Exception):
    """The student's code failed: raised, crashed, hung or returned something unusable."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


class NotDefined(StudentError):
    """The notebook's run left no such function."""


@functools.cache
def bwrap_path() -> str | None:
    """bubblewrap, if it is installed and can actually create namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True)
    return path if probe.returncode == 0 else None


class NoConfinement(RuntimeError):
    """Student code cannot be confined here, and running it unconfined was not asked for."""


def sandbox_mode(requested: str = "auto") -> str:
    """bwrap where bubblewrap can create namespaces, else uid where we are root; "none" only when asked."""
    if requested not in MODES:
        raise ValueError(f"unknown sandbox mode {requested!r}")
    if requested == "none":
        return "none"
    if requested in ("auto", "bwrap") and bwrap_path():
        return "bwrap"
    if requested == "bwrap":
        raise NoConfinement("bubblewrap (bwrap) is required but cannot create namespaces here "
                            "(apt-get install bubblewrap, or a container that allows user namespaces)")
    problem = uid_confinement.problem()
    if problem is None:
        return "uid"
    raise NoConfinement(f"student code cannot be confined here: bubblewrap cannot create namespaces and {problem}. "
                        "Run the grader as root (student code then runs as a user of its own), or allow "
                        "bubblewrap's namespaces; --unsafe-no-sandbox grades unconfined, for trusted code only.")


NO_SANDBOX_WARNING = ("WARNING: no sandbox (--unsafe-no-sandbox): student code ran as an ordinary process with "
                      "resource limits only; it could read the grader's files and use the network.")


def private_paths() -> list[Path]:
    """What student code must never read: the hidden checks, the course's solutions, the library's
    reference versions of what students write, and what the grade
    command adds (its reports and the submissions) through AUTOGRADER_PRIVATE."""
    course = PACKAGE_DIR.parent
    paths = [PACKAGE_DIR / "assignments", course / "solutions", course / "exercises", student_library.reference_file()]
    paths += [Path(p) for p in os.environ.get("AUTOGRADER_PRIVATE", "").split(os.pathsep) if p]
    return [p for p in paths if p.exists()]


def remove_leftovers(prefix: str) -> None:
    """What a killed grading worker's sandboxes (all named from `prefix`) may have left: the processes and
    files of their users, their folders, their cgroups (once their processes are gone)."""
    uid_confinement.release_abandoned(prefix)
    for folder in Path(UID_WORKDIRS).glob(f"{prefix}*"):
        shutil.rmtree(folder, ignore_errors=True)
    cgroups.remove_all(prefix)


UID_WORKDIRS = "/tmp"   # without namespaces the sandbox's user must reach its folder: no private TMPDIR above it


class Sandbox:
    """The sandbox itself: one bubblewrap namespace holding a zygote (zygote.py) that has imported torch
    and forks a child per graded function. One per grading process, reset between submissions."""

    def __init__(self, mode: str = "auto", limits: Limits = Limits()):
        self.mode, self.limits = sandbox_mode(mode), limits
        self.process = None
        self.user = None   # uid mode: the ClaimedUid of this sandbox
        self.dirty = False   # a child ran since the last reset

    def spawn(self) -> tuple[int, int, int]:
        """A fresh child: (its pid inside the sandbox, the fd to send calls on, the fd to read answers from).
        A zygote that died (a student's child may kill it) is replaced once, transparently."""
        for _ in range(2):
            if self.process is None or self.process.poll() is not None:
                self._start()
            self.dirty = True
            to_child, from_grader = os.pipe()
            from_child, to_grader = os.pipe()
            try:
                answer = self._request(f"spawn {json.dumps(self._child_rlimits())}", (to_child, to_grader))
            finally:
                os.close(to_child)
                os.close(to_grader)
            if answer is not None and answer.startswith("child "):
                return int(answer.split()[1]), from_grader, from_child
            os.close(from_grader)
            os.close(from_child)
            self.close()   # e.g. out of processes: left running by this same submission's earlier functions
        raise RuntimeError(f"the sandbox could not start a process ({answer})")

    def kill(self, pid: int):
        if self.process is not None:
            self._request(f"kill {pid}")

    def reset(self):
        """Between submissions: every process of the last one killed, every writable place emptied.
        A sandbox that cannot promise that is thrown away; the next spawn starts a new one."""
        if self.process is not None and self.dirty:
            if self._request("reset", seconds=60) != "clean":
                self.close()
            elif self.user is not None:   # what its user left in /tmp and the like, outside the zygote's reach
                uid_confinement.clean_up_after(self.user.uid)
        self.dirty = False

    def close(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self._control.close()
        if self.user is not None:   # kills what still runs under its uid before its cgroups go
            self.user.release()
            self.user = None
        self._cgroups.remove()
        self._stderr.close()
        shutil.rmtree(self._workdir, ignore_errors=True)
        self.process = None

    # -- internals ------------------------------------------------------------------------------
    def _start(self):
        self.close()
        if self.mode == "uid":
            self._workdir = Path(tempfile.mkdtemp(prefix=cgroups.prefix(), dir=UID_WORKDIRS))
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="autograder-"))
        runner_dir, scratch = self._workdir / "runner", self._workdir / "scratch"
        runner_dir.mkdir()
        scratch.mkdir()
        if self.mode == "uid":
            self._confine_to_a_user(scratch)
        for name in RUNNER_FILES:
            shutil.copy(INSIDE_DIR / name, runner_dir / name)
        student_library.write_tree(self._workdir / "student_lib")   # what students get, not the full library
        self._stderr = open(self._workdir / "stderr", "w+b")
        # above one child's RLIMIT_AS so a plain MemoryError usually comes first; the zygote's own pages
        # and tmpfs pages are charged here too
        self._cgroups = cgroups.Cgroups(self.limits.processes,
                                        self.limits.memory_bytes + 3 * self.limits.tmp_bytes + ZYGOTE_BYTES)
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                self._command(runner_dir, scratch), stdin=theirs, stdout=subprocess.DEVNULL, stderr=self._stderr,
                preexec_fn=self._in_child, env=self._environment(scratch), cwd=scratch, close_fds=True)
        if self._receive(self.limits.startup_seconds) != "ready":
            problem = f"the sandbox did not start: {self._diagnostics()}"
            self.close()
            raise RuntimeError(problem)

    def _confine_to_a_user(self, scratch: Path):
        self.user = uid_confinement.ClaimedUid(cgroups.prefix())
        os.chmod(self._workdir, 0o711)    # its user may pass through to what it needs, not list it
        os.chown(scratch, self.user.uid, self.user.uid)
        private = private_paths()
        uid_confinement.make_private(private)
        readable = uid_confinement.readable_by(self.user.uid, private)
        if readable:
            self.close()
            raise NoConfinement(f"student code could read {', '.join(readable)}: the grader's files must not be "
                                "readable by other users (chmod go-rwx)")

    def _request(self, message: str, fds=(), seconds: float = 10.0) -> str | None:
        try:
            socket.send_fds(self._control, [message.encode()], list(fds))
        except OSError:
            self.close()
            return None
        answer = self._receive(seconds)
        if answer is None:   # dead or stuck: nothing it says can be trusted any more
            self.close()
        return answer

    def _receive(self, seconds: float) -> str | None:
        self._control.settimeout(seconds)
        try:
            answer = self._control.recv(4096)
        except OSError:
            return None
        return answer.decode(errors="replace") or None

    def _diagnostics(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-3000:].decode(errors="replace")

    def _child_rlimits(self) -> dict[str, int]:
        limits = {"RLIMIT_AS": self.limits.memory_bytes, "RLIMIT_FSIZE": self.limits.file_bytes,
                  "RLIMIT_CPU": self.limits.cpu_seconds, "RLIMIT_CORE": 0}
        if self.mode == "uid":   # per user, and the sandbox's user is its own: the whole sandbox's processes
            limits["RLIMIT_NPROC"] = self.limits.processes
        return limits

    def _command(self, runner_dir: Path, scratch: Path) -> list[str]:
        python = [sys.executable, "-I", "-B", "/runner/zygote.py"]
        if self.mode in ("none", "uid"):
            return [sys.executable, "-I", "-B", str(runner_dir / "zygote.py")]
        # Order matters: the tmpfs mounts come first so that later binds (a venv under /tmp) stay visible.
        # --as-pid-1: the zygote is the namespace's init. No bubblewrap init stays inside holding a copy
        # of the control socket, and no child can kill or stop the zygote (init ignores such signals).
        command = [bwrap_path(), "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session",
                   "--hostname", "sandbox",
                   "--proc", "/proc", "--dev", "/dev",
                   "--size", str(self.limits.tmp_bytes), "--tmpfs", "/dev/shm",
                   "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp",
                   "--size", str(self.limits.tmp_bytes), "--tmpfs", "/sandbox",
                   "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for name in ("bin", "lib", "lib64", "sbin"):
            top = Path("/") / name
            if top.is_symlink():
                command += ["--symlink", os.readlink(top), str(top)]
            elif top.is_dir():
                command += ["--ro-bind", str(top), str(top)]
        secrets = [str(PACKAGE_DIR / "assignments"), str(student_library.reference_file())]
        for prefix in _python_roots():
            for secret in secrets:
                if secret == prefix or secret.startswith(prefix.rstrip(os.sep) + os.sep):
                    raise RuntimeError(f"{secret} lies inside {prefix}, which the sandbox mounts: install the "
                                       "grader editable (pip install -e) so the hidden checks and references stay outside")
            command += ["--ro-bind", prefix, prefix]
        if _python_under_tmp():
            # The folders leading to Python would be writable on the tmpfs: one student could rename
            # them away from the next. /tmp is read-only then, and TMPDIR points into /sandbox.
            command += ["--remount-ro", "/tmp"]
        command += ["--ro-bind", str(runner_dir), "/runner", "--ro-bind", str(runner_dir.parent / "student_lib"),
                    "/student_lib", "--chdir", "/sandbox"]
        # Only the three wiped tmpfs mounts stay writable: the root (/, /root...) and /dev would
        # otherwise keep what one student leaves there for the next.
        command += ["--remount-ro", "/dev", "--remount-ro", "/"]
        if os.geteuid() == 0:
            command += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        return command + python

    def _environment(self, scratch: Path) -> dict[str, str]:
        home, places, extra = str(scratch), [str(scratch)], {}
        if self.mode == "bwrap":
            home, places = "/sandbox", ["/sandbox", "/dev/shm", "/tmp"]
            if _python_under_tmp():   # /tmp is read-only then (see _command)
                places, extra = places[:2], {"TMPDIR": "/sandbox"}
        library = "/student_lib" if self.mode == "bwrap" else str(scratch.parent / "student_lib")
        if self.mode == "uid":
            extra = {"AUTOGRADER_SANDBOX_UID": str(self.user.uid), "TMPDIR": str(scratch)}
        return {**extra, "AUTOGRADER_SCRATCH": os.pathsep.join(places), "AUTOGRADER_STUDENT_LIB": library,
                "PATH": "/usr/bin:/bin", "HOME": home,
                "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "MPLBACKEND": "Agg", "TQDM_DISABLE": "1", "DIFFUSERS_VERBOSITY": "error"}

    def _in_child(self):
        os.setsid()
        if self.mode == "uid":   # bubblewrap's --die-with-parent: a killed worker takes its zygote along
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        self._cgroups.join()
        for limit, value in ((resource.RLIMIT_FSIZE, self.limits.file_bytes), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(limit, (value, value))


@functools.cache
def shared_sandbox(mode: str, limits: Limits) -> Sandbox:
    """The grading process's sandbox for these settings, kept across submissions (and reset between them)."""
    sandbox = Sandbox(mode, limits)
    atexit.register(sandbox.close)
    return sandbox


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

    def open(self, function: str) -> FunctionProcess:
        """A server for `function`; StudentError when the notebook does not define it."""
        self.close_function()
        if self._closing is not None:   # the last server's end (see close_function)
            self._await_end(self._closing)
        self._send({"open": function}, {})
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
            return wire.unpack(bytes(buffer))
        except (wire.WireError, RecursionError) as error:
            self._die(f"the sandboxed process sent an unreadable answer ({error})")

    def _die(self, reason: str):
        """Kills the notebook's processes: the next function gets a fresh run."""
        self.dead_reason = reason
        if self.pid is not None:
            self.sandbox.kill(self.pid)
        self.close()
        raise StudentError(reason)


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
        description = {"args": wire.encode(list(args), arrays, to_numpy=_trusted_to_numpy),
                       "kwargs": wire.encode(dict(kwargs), arrays, to_numpy=_trusted_to_numpy)}
        notebook._send(description, arrays)
        # One budget per call, not per message: only the time spent waiting for the student's code counts
        # (the grader's own work on a call back, e.g. running the real pipeline, does not).
        budget = self.limits.call_seconds
        doing = f"running {self.function}"
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
            notebook._send(*handler(request, answer_arrays))
        if "error" in answer:
            raise StudentError(f"{self.function} raised an error:\n{answer['error']}", answer.get("output", ""))
        try:
            value = wire.decode(answer["value"], answer_arrays, from_array=_rebuild)
            self.last_inputs_after = wire.decode(answer["inputs_after"], answer_arrays, from_array=_rebuild)
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


def _python_under_tmp() -> bool:
    return any(root.startswith("/tmp/") for root in _python_roots())


@functools.cache
def _python_roots() -> list[str]:
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    # A venv's interpreter is a symlink into the base installation: mount both ends.
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def _trusted_to_numpy(value):
    import torch

    if isinstance(value, Linear):
        if value.bias is None:
            return "linear", value.weight
        return "affine", np.concatenate([value.weight, value.bias[:, None]], axis=1)
    if isinstance(value, PipelineHandle):
        return "pipeline", np.array([value.height, value.width], dtype=np.int64)
    if isinstance(value, ModelHandle):
        return "model", np.zeros(0, dtype=np.int8)
    if isinstance(value, torch.Tensor):
        return "tensor", value.detach().cpu().numpy().copy()
    return None


def _rebuild(kind: str, array: np.ndarray):
    """Arrays from the student's side come back as plain numpy-backed values the grader owns."""
    import torch

    # Unsigned integers wider than a byte are half-supported in torch: most operations on them raise.
    widened = {"u2": np.int32, "u4": np.int64, "u8": np.float64}.get(array.dtype.str[1:])
    if widened is not None:
        array = array.astype(widened)
    if kind == "tensor":
        return torch.from_numpy(array.copy())
    if kind == "numpy_scalar":
        return array.reshape(()).item()
    if kind == "linear":
        return Linear(array)
    if kind.startswith("image/"):
        return StudentImage(kind.split("/", 1)[1][:16], array)
    raise wire.WireError(f"unknown value kind {kind[:40]!r}")


@dataclass
class Linear:
    """A projection layer, rebuilt as torch.nn.Linear inside the sandbox."""
    weight: np.ndarray   # (out_features, in_features)
    bias: np.ndarray | None = None   # (out_features,)

    def __call__(self, x):
        import torch

        y = x @ torch.from_numpy(self.weight).T.to(x.dtype)
        return y if self.bias is None else y + torch.from_numpy(self.bias).to(x.dtype)


@dataclass
class PipelineHandle:
    """Passed as an argument: the student's code receives a pipeline proxy whose calls come back to
    FunctionProcess.callbacks["pipeline"] (see sd_pipeline.RecordingPipeline)."""
    height: int
    width: int


@dataclass
class ModelHandle:
    """Passed as an argument: the student's code receives a torch module whose calls come back to
    FunctionProcess.callbacks["model"], where the grader's own model answers and the call is recorded."""


@dataclass
class StudentImage:
    """A PIL image the student returned: its mode and pixels."""
    mode: str
    pixels: np.ndarray
