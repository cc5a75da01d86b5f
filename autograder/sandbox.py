"""Student code runs here: a bubblewrap sandbox around a child Python process, one per graded function.

The child sees the system's libraries and the Python environment read-only, an empty working
directory and /tmp (small tmpfs), no network, no other processes, none of the grader's files (only
the runner and its wire format are mounted). Resource limits bound memory, file size, CPU time and,
where the host lets us create cgroups, the number of processes. The grader talks to it through
pipes (wire.py) with a deadline on every answer; on any deadline or crash the whole sandbox is
killed. Where bubblewrap is missing, the child runs unconfined and every report says so loudly.
"""
from __future__ import annotations

import functools
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import wire

RUNNER_FILES = ("student_runner.py", "wire.py")
CGROUP_V1 = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    startup_seconds: float = 120.0     # importing torch under load can take a while
    call_seconds: float = 30.0
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


@functools.cache
def bwrap_path() -> str | None:
    """bubblewrap, if it is installed and can actually create namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True)
    return path if probe.returncode == 0 else None


def sandbox_mode(requested: str = "auto") -> str:
    if requested not in ("auto", "bwrap", "none"):
        raise ValueError(f"unknown sandbox mode {requested!r}")
    if requested == "none":
        return "none"
    if bwrap_path():
        return "bwrap"
    if requested == "bwrap":
        raise RuntimeError("bubblewrap (bwrap) is required but not usable here: apt-get install bubblewrap")
    return "none"


NO_SANDBOX_WARNING = ("WARNING: no sandbox. bubblewrap is not available, so student code ran as an ordinary "
                      "process with resource limits only; it could read files and use the network. "
                      "Install bubblewrap (apt-get install bubblewrap) before grading for real.")


class _Cgroups:
    """Per-sandbox v1 cgroups for pids and memory, when the host lets us make them."""

    def __init__(self, limits: Limits):
        self.paths = []
        name = f"autograder-{uuid.uuid4().hex[:12]}"
        for controller, settings in (("pids", {"pids.max": limits.processes}),
                                     # above RLIMIT_AS so a plain MemoryError usually comes first;
                                     # tmpfs pages are charged here too
                                     ("memory", {"memory.limit_in_bytes": limits.memory_bytes
                                                 + 2 * limits.tmp_bytes + (256 << 20)})):
            path = CGROUP_V1 / controller / name
            try:
                path.mkdir()
                for key, value in settings.items():
                    (path / key).write_text(str(value))
                self.paths.append(path)
            except OSError:
                try:
                    path.rmdir()
                except OSError:
                    pass

    def join(self):  # runs in the child between fork and exec
        for path in self.paths:
            with open(path / "cgroup.procs", "w") as handle:
                handle.write(str(os.getpid()))

    def remove(self):
        for path in self.paths:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


class StudentProcess:
    """One sandboxed child holding one graded function of one submission."""

    def __init__(self, program: str, function: str, *, limits: Limits = Limits(), mode: str = "auto"):
        self.program, self.function, self.limits = program, function, limits
        self.mode = sandbox_mode(mode)
        self.process = None
        self.dead_reason = None
        self.callbacks = {}   # name -> handler(request, arrays) -> (answer, arrays), for calls back from the sandbox
        self.last_inputs_after = None  # [args, kwargs] as the student's code left them after the last call
        self.diagnostics = ""   # the sandbox's own stderr when it died: for the grader's log, not the student
        self._stderr = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self):
        self._workdir = Path(tempfile.mkdtemp(prefix="autograder-"))
        runner_dir = self._workdir / "runner"
        runner_dir.mkdir()
        here = Path(__file__).parent
        for name in RUNNER_FILES:
            shutil.copy(here / name, runner_dir / name)
        self._stderr = open(self._workdir / "stderr", "w+b")
        self._cgroups = _Cgroups(self.limits)
        self.process = subprocess.Popen(
            self._command(runner_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            preexec_fn=self._in_child, env=self._environment(), cwd=self._workdir, close_fds=True)
        self._send({"program": self.program, "function": self.function}, {})
        answer = self._receive(self.limits.startup_seconds, "defining your code")
        if "error" in answer[0]:
            self.dead_reason = f"your code failed while being defined:\n{answer[0]['error']}"
            output = answer[0].get("output", "")
            self.close()
            raise StudentError(self.dead_reason, output)

    def close(self):
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self._cgroups.remove()
            self._stderr.close()
            shutil.rmtree(self._workdir, ignore_errors=True)
            self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- calls ----------------------------------------------------------------------------------
    def call(self, *args, **kwargs):
        if self.dead_reason:
            raise StudentError(self.dead_reason)
        arrays: dict[str, np.ndarray] = {}
        description = {"args": wire.encode(list(args), arrays, to_numpy=_trusted_to_numpy),
                       "kwargs": wire.encode(dict(kwargs), arrays, to_numpy=_trusted_to_numpy)}
        self._send(description, arrays)
        while True:
            answer, answer_arrays = self._receive(self.limits.call_seconds, f"running {self.function}")
            if "callback" not in answer:
                break
            handler = self.callbacks.get(answer["callback"]) if isinstance(answer["callback"], str) else None
            if handler is None:
                self._send({"error": "this object is not available here"}, {})
                continue
            request = answer.get("request") if isinstance(answer.get("request"), dict) else {}
            self._send(*handler(request, answer_arrays))
        if "error" in answer:
            raise StudentError(f"{self.function} raised an error:\n{answer['error']}", answer.get("output", ""))
        try:
            value = wire.decode(answer["value"], answer_arrays, from_array=_rebuild)
            self.last_inputs_after = wire.decode(answer["inputs_after"], answer_arrays, from_array=_rebuild)
            return value
        except (wire.WireError, KeyError, TypeError, ValueError) as error:
            raise StudentError(f"{self.function} returned something the grader cannot read ({error})") from None

    # -- internals ------------------------------------------------------------------------------
    def _command(self, runner_dir: Path) -> list[str]:
        python = [sys.executable, "-I", "-B", "/runner/student_runner.py"]
        if self.mode == "none":
            return [sys.executable, "-I", "-B", str(runner_dir / "student_runner.py")]
        # Order matters: the tmpfs mounts come first so that later binds (a venv under /tmp) stay visible.
        command = [bwrap_path(), "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox",
                   "--proc", "/proc", "--dev", "/dev",
                   "--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp",
                   "--size", str(self.limits.tmp_bytes), "--tmpfs", "/sandbox",
                   "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for name in ("bin", "lib", "lib64", "sbin"):
            top = Path("/") / name
            if top.is_symlink():
                command += ["--symlink", os.readlink(top), str(top)]
            elif top.is_dir():
                command += ["--ro-bind", str(top), str(top)]
        checks = str(Path(__file__).resolve().parent / "checks")
        for prefix in _python_roots():
            if checks == prefix or checks.startswith(prefix.rstrip(os.sep) + os.sep):
                raise RuntimeError(f"the hidden checks ({checks}) lie inside {prefix}, which the sandbox mounts: "
                                   "install the grader editable (pip install -e) so they stay outside")
            command += ["--ro-bind", prefix, prefix]
        command += ["--ro-bind", str(runner_dir), "/runner", "--chdir", "/sandbox"]
        if os.geteuid() == 0:
            command += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        return command + python

    def _environment(self) -> dict[str, str]:
        env = {"PATH": "/usr/bin:/bin", "HOME": "/sandbox" if self.mode == "bwrap" else str(self._workdir),
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "MPLBACKEND": "Agg", "TQDM_DISABLE": "1", "DIFFUSERS_VERBOSITY": "error"}
        return env

    def _in_child(self):
        os.setsid()
        self._cgroups.join()
        for limit, value in ((resource.RLIMIT_AS, self.limits.memory_bytes),
                             (resource.RLIMIT_FSIZE, self.limits.file_bytes),
                             (resource.RLIMIT_CPU, self.limits.cpu_seconds),
                             (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(limit, (value, value))

    def _send(self, description, arrays):
        try:
            wire.write_frame(self.process.stdin.fileno(), wire.pack(description, arrays))
        except (BrokenPipeError, OSError):
            pass  # the child is gone; _receive reports why

    def _receive(self, seconds: float, doing: str):
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + seconds
        buffer = bytearray()
        needed = wire.HEADER.size
        header_done = False
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(buffer) < needed:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self._die(f"{self.function} took longer than {seconds:.0f} s while {doing} "
                              "(an endless loop, or far too much work?)")
                chunk = os.read(fd, min(1 << 20, needed - len(buffer)))
                if not chunk:
                    self._die(self._exit_description(doing))
                buffer += chunk
                if not header_done and len(buffer) >= wire.HEADER.size:
                    (length,) = wire.HEADER.unpack(bytes(buffer[:wire.HEADER.size]))
                    if length > wire.MAX_FRAME_BYTES:
                        self._die(f"{self.function} returned more data than the grader accepts")
                    del buffer[:wire.HEADER.size]
                    needed, header_done = length, True
        try:
            return wire.unpack(bytes(buffer))
        except wire.WireError as error:
            self._die(f"the sandboxed process sent an unreadable answer ({error})")

    def _exit_description(self, doing: str) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return f"the process running your code stopped answering while {doing}"
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (probably out of memory)" if -code == signal.SIGKILL else ""
            return f"the process running your code was killed by {name}{hint} while {doing}"
        return (f"the process running your code exited (status {code}) while {doing}: "
                "do not call sys.exit, os._exit or exit() in your functions")

    def _die(self, reason: str):
        self._stderr.seek(0)
        self.diagnostics = self._stderr.read(4096).decode(errors="replace")
        self.dead_reason = reason
        self.close()
        raise StudentError(reason)


@functools.cache
def _python_roots() -> list[str]:
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    # A venv's interpreter is a symlink into the base installation: mount both ends.
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def _trusted_to_numpy(value):
    import torch

    if isinstance(value, Linear):
        return "linear", value.weight
    if isinstance(value, PipelineHandle):
        return "pipeline", np.array([value.height, value.width], dtype=np.int64)
    if isinstance(value, torch.Tensor):
        return "tensor", value.detach().cpu().numpy().copy()
    return None


def _rebuild(kind: str, array: np.ndarray):
    """Arrays from the student's side come back as plain numpy-backed values the grader owns."""
    import torch

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
    """A bias-free projection layer, rebuilt as torch.nn.Linear inside the sandbox."""
    weight: np.ndarray   # (out_features, in_features)

    def __call__(self, x):
        import torch

        return x @ torch.from_numpy(self.weight).T.to(x.dtype)


@dataclass
class PipelineHandle:
    """Passed as an argument: the student's code receives a pipeline proxy whose calls come back to
    StudentProcess.callbacks["pipeline"] (see sd_pipeline.RecordingPipeline)."""
    height: int
    width: int


@dataclass
class StudentImage:
    """A PIL image the student returned: its mode and pixels."""
    mode: str
    pixels: np.ndarray
