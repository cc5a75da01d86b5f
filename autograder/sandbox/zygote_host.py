"""The host side of the sandbox: a bubblewrap sandbox holding a zygote that forks one child per submission.

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
sandbox's own, under the same syscall filter (which then also keeps it off the network) and limits
(modes.py chooses). bwrap.py builds the namespace sandbox's command line; student_process.py talks to
the processes this one forks.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.release import student_library
from autograder.sandbox import bwrap, cgroups, font_list, private_files, start_slots, uid_confinement
from autograder.sandbox.inside import wipe
from autograder.sandbox.limits import ZYGOTE_BYTES, Limits
from autograder.sandbox.modes import NoConfinement, sandbox_mode

INSIDE_DIR = Path(__file__).resolve().parent / "inside"
RUNNER_FILES = tuple(sorted(p.name for p in INSIDE_DIR.glob("*.py")))   # with the font list, all the sandbox sees of us
PR_SET_PDEATHSIG = 1


def remove_leftovers(prefix: str) -> None:
    """What a killed grading worker's sandboxes (all named from `prefix`) may have left: the processes and
    files of their users, their folders, their cgroups (once their processes are gone)."""
    uid_confinement.release_abandoned(prefix)
    for folder in Path(UID_WORKDIRS).glob(f"{prefix}*"):
        wipe.remove(str(folder))
    cgroups.remove_all(prefix)


UID_WORKDIRS = "/tmp"   # without namespaces the sandbox's user must reach its folder: no private TMPDIR above it


class Sandbox:
    """The sandbox itself: one bubblewrap namespace holding a zygote (zygote.py) that has imported torch
    and forks a child per graded function. One per grading process, reset between submissions."""

    def __init__(self, mode: str = "auto", limits: Limits = Limits(), warm_meta: bool = False):
        self.mode, self.limits = sandbox_mode(mode), limits
        self.warm_meta = warm_meta   # load PyTorch's meta kernels once, for checks that use that device
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
        wipe.remove(str(self._workdir))   # whatever tree the student made there
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
        font_list.copy_into(runner_dir)
        student_library.write_tree(self._workdir / "student_lib")   # what students get, not the full library
        self._stderr = open(self._workdir / "stderr", "w+b")
        # above one child's RLIMIT_AS so a plain MemoryError usually comes first; the zygote's own pages
        # and tmpfs pages are charged here too
        self._cgroups = cgroups.Cgroups(self.limits.processes,
                                        self.limits.memory_bytes + 3 * self.limits.tmp_bytes + ZYGOTE_BYTES)
        self._control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with start_slots.slot():   # its imports take a CPU: see start_slots.py
            with theirs:
                self.process = subprocess.Popen(
                    self._command(runner_dir, scratch), stdin=theirs, stdout=subprocess.DEVNULL, stderr=self._stderr,
                    preexec_fn=self._in_child, env=self._environment(scratch), cwd=scratch, close_fds=True)
            ready = self._receive(self.limits.startup_seconds) == "ready"
        if not ready:
            problem = f"the sandbox did not start: {self._diagnostics()}"
            self.close()
            raise RuntimeError(problem)

    def _confine_to_a_user(self, scratch: Path):
        self.user = uid_confinement.ClaimedUid(cgroups.prefix())
        os.chmod(self._workdir, 0o711)    # its user may pass through to what it needs, not list it
        os.chown(scratch, self.user.uid, self.user.uid)
        os.chmod(scratch, 0o700)          # its files are its own: not even a classmate's sandbox may list them
        private = private_files.private_paths()
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
        if self.mode in ("none", "uid"):
            return [sys.executable, "-I", "-B", str(runner_dir / "zygote.py")]
        return bwrap.command(self.limits, runner_dir, [sys.executable, "-I", "-B", "/runner/zygote.py"])


    def _environment(self, scratch: Path) -> dict[str, str]:
        home, places, extra = str(scratch), [str(scratch)], {}
        if self.mode == "bwrap":
            home, places = "/sandbox", ["/sandbox", "/dev/shm", "/tmp"]
            if bwrap.python_under_tmp():   # /tmp is read-only then (see _command)
                places, extra = places[:2], {"TMPDIR": "/sandbox"}
        library = "/student_lib" if self.mode == "bwrap" else str(scratch.parent / "student_lib")
        if self.mode == "uid":
            extra = {"AUTOGRADER_SANDBOX_UID": str(self.user.uid), "TMPDIR": str(scratch)}
        return {**extra, "AUTOGRADER_SCRATCH": os.pathsep.join(places), "AUTOGRADER_STUDENT_LIB": library,
                "PATH": "/usr/bin:/bin", "HOME": home, "CUDA_VISIBLE_DEVICES": "",   # the GPU is the grader's
                "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.matplotlib", "TQDM_DISABLE": "1", "DIFFUSERS_VERBOSITY": "error",
                **({"AUTOGRADER_WARM_META": "1"} if self.warm_meta else {})}

    def _in_child(self):
        os.setsid()
        if self.mode == "uid":   # bubblewrap's --die-with-parent: a killed worker takes its zygote along
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        self._cgroups.join()
        for limit, value in ((resource.RLIMIT_FSIZE, self.limits.file_bytes), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(limit, (value, value))


@functools.cache
def shared_sandbox(mode: str, limits: Limits, warm_meta: bool = False) -> Sandbox:
    """The grading process's sandbox for these settings, kept across submissions (and reset between them)."""
    sandbox = Sandbox(mode, limits, warm_meta)
    atexit.register(sandbox.close)
    return sandbox
