"""Confinement without namespaces (the grader's side): where bubblewrap cannot run, as in Docker on
Gradescope, student code runs as a user id of its own sandbox, under the zygote's syscall filter
(syscall_filter.py: no network, no tracing) and the same resource limits.

A grader running as root gives each sandbox its own uid, claimed with a lock file for as long as
the sandbox lives, so that sandboxes graded side by side cannot signal each other and RLIMIT_NPROC
counts one sandbox's processes. Claiming a uid first kills whatever still runs under it and removes
what it left in the world-writable folders: a sandbox killed with its worker leaves nothing that
reaches the next one. The grader's own files (hidden checks, solutions, submissions, reports) are
made private to root, and a probe running as the sandbox's uid proves it can read none of them before
any student code runs.
"""
from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.sandbox.inside import wipe

UID_BASE, UID_COUNT = 300_000, 1000      # outside the usual ranges of login users and subuids
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")   # where another user can leave files
LOCKS = Path("/run/autograder-uids") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir()) / "autograder-uids"


def problem() -> str | None:
    """Why this machine cannot confine student code without namespaces, or None if it can."""
    if os.geteuid() != 0:
        return "the grader does not run as root, so student code cannot run as a user of its own"
    try:
        import pyseccomp  # noqa: F401

        pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    except (ImportError, OSError, RuntimeError) as error:
        return f"the syscall filter cannot be built (libseccomp: {error})"
    return None


class ClaimedUid:
    """A uid no other live sandbox uses, held until release(); `owner` names the grading worker."""

    def __init__(self, owner: str):
        LOCKS.mkdir(mode=0o700, exist_ok=True)
        for uid in range(UID_BASE, UID_BASE + UID_COUNT):
            handle = open(LOCKS / f"{uid}.lock", "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            clean_up_after(uid)   # a sandbox that held it before may have died without cleaning
            handle.truncate(0)
            handle.write(owner)
            handle.flush()
            self.uid, self._handle = uid, handle
            return
        raise RuntimeError(f"all {UID_COUNT} sandbox user ids are in use")

    def release(self):
        clean_up_after(self.uid)
        self._handle.close()


def release_abandoned(owner: str) -> None:
    """The uids a killed worker `owner` held: their processes killed, their files removed."""
    for lock in LOCKS.glob("*.lock") if LOCKS.is_dir() else ():
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue   # a live sandbox holds it
            handle.seek(0)
            if handle.read() == owner:
                clean_up_after(int(lock.stem))


def clean_up_after(uid: int, rounds: int = 100) -> None:
    for _ in range(rounds):
        running = [pid for pid in _pids() if _process_uid(pid) == uid]
        if not running:
            break
        for pid in running:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
    for place in WORLD_WRITABLE:
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for entry in entries:
            if _owner(entry.path) == uid:
                if entry.is_dir(follow_symlinks=False):
                    wipe.remove(entry.path)
                else:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass


def make_private(paths) -> None:
    """Takes all access to `paths` from everyone but their owner (root): a folder's contents go with it."""
    for path in dict.fromkeys(Path(p).resolve() for p in paths):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                os.chmod(path, mode & ~0o077)
        except OSError:
            continue


PROBE = """
import os, sys
readable = []
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").close()
        readable.append(path)
    except OSError:
        pass
print("\\n".join(readable))
"""


def readable_by(uid: int, paths: list[Path]) -> list[str]:
    """Which of `paths` a process running as `uid` can list or open."""
    run = subprocess.run([sys.executable, "-I", "-c", PROBE, *map(str, paths)], user=uid, group=uid, extra_groups=[],
                         capture_output=True, text=True, cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=60)
    if run.returncode != 0:
        closed = [str(p) for p in Path(os.path.realpath(sys.executable)).parents if not os.stat(p).st_mode & 0o001]
        raise RuntimeError(f"student code, running as another user, could not start Python ({sys.executable}): "
                           f"{run.stderr.strip()[-300:]}. Install the grader's Python where other users can read it"
                           + (f" ({closed[-1]} is closed to them: chmod o+x {closed[-1]})" if closed else ""))
    return [line for line in run.stdout.splitlines() if line]


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _process_uid(pid: int) -> int | None:
    """The real uid (/proc/PID itself belongs to root when the process is not dumpable)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _owner(path: str) -> int | None:
    try:
        return os.lstat(path).st_uid
    except OSError:
        return None
