"""bubblewrap: the namespace sandbox's command line (read-only system, three wiped tmpfs, no network)."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from autograder.assignments import ASSIGNMENTS_DIR
from autograder.release import student_library
from autograder.sandbox.limits import Limits


@functools.cache
def bwrap_path() -> str | None:
    """bubblewrap, if it is installed and can actually create namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True)
    return path if probe.returncode == 0 else None


def command(limits: Limits, runner_dir: Path, python: list[str]) -> list[str]:
    """bwrap's arguments for a zygote that sees /runner, /student_lib and the Python environment, read-only."""
    # Order matters: the tmpfs mounts come first so that later binds (a venv under /tmp) stay visible.
    # --as-pid-1: the zygote is the namespace's init. No bubblewrap init stays inside holding a copy
    # of the control socket, and no child can kill or stop the zygote (init ignores such signals).
    command = [bwrap_path(), "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session",
               "--hostname", "sandbox",
               "--proc", "/proc", "--dev", "/dev",
               "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm",
               "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
               "--size", str(limits.tmp_bytes), "--tmpfs", "/sandbox",
               "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "lib", "lib64", "sbin"):
        top = Path("/") / name
        if top.is_symlink():
            command += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            command += ["--ro-bind", str(top), str(top)]
    secrets = [str(ASSIGNMENTS_DIR), str(student_library.reference_file())]
    for prefix in python_roots():
        for secret in secrets:
            if secret == prefix or secret.startswith(prefix.rstrip(os.sep) + os.sep):
                raise RuntimeError(f"{secret} lies inside {prefix}, which the sandbox mounts: install the "
                                   "grader editable (pip install -e) so the hidden checks and references stay outside")
        command += ["--ro-bind", prefix, prefix]
    if python_under_tmp():
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


def python_under_tmp() -> bool:
    return any(root.startswith("/tmp/") for root in python_roots())


@functools.cache
def python_roots() -> list[str]:
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    # A venv's interpreter is a symlink into the base installation: mount both ends.
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))
