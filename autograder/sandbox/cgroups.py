"""The sandbox's process and memory limits as cgroups, where the host lets the grader make them.

cgroup v1 (separate `pids` and `memory` hierarchies): one cgroup per sandbox in each. cgroup v2 (one
hierarchy, Ubuntu 22.04 and later, GitHub's runners): one cgroup per sandbox under the grader's own
cgroup, or under AUTOGRADER_CGROUP2_PARENT (a cgroup delegated to the grader, e.g. by
`systemd-run -p Delegate=yes`); its `pids.max` and `memory.max` exist only where those controllers are
enabled for it, which v2 allows only below a cgroup without processes of its own. Where neither
gives limits, zygote_host.py falls back on RLIMIT_NPROC (uid mode) and each child's RLIMIT_AS.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

CGROUP_V1 = Path(os.environ.get("AUTOGRADER_CGROUP_V1", "/sys/fs/cgroup"))


def prefix() -> str:
    """Names of this process's sandbox cgroups start with it, so whoever started us can remove them."""
    return os.environ.get("AUTOGRADER_CGROUP_PREFIX", "autograder-")


def v2_parent() -> Path | None:
    """Where this process may make v2 cgroups: the delegated parent it was given, else its own cgroup."""
    if os.environ.get("AUTOGRADER_CGROUP2_PARENT"):
        return Path(os.environ["AUTOGRADER_CGROUP2_PARENT"])
    try:
        with open("/proc/self/mountinfo") as handle:
            mounts = [line.split() for line in handle]
        with open("/proc/self/cgroup") as handle:
            own = next((line.strip()[3:] for line in handle if line.startswith("0::")), None)
    except OSError:
        return None
    mount = next((f[4] for f in mounts if "-" in f and f[f.index("-") + 1] == "cgroup2"), None)
    return None if mount is None or own is None else Path(mount) / own.lstrip("/")


class Cgroups:
    """One sandbox's cgroups: made at start, joined by its first process, removed when it closes."""

    def __init__(self, processes: int, memory_bytes: int):
        self.paths: list[Path] = []
        self.limited: set[str] = set()   # which limits a cgroup enforces: "pids", "memory"
        name = f"{prefix()}{uuid.uuid4().hex[:12]}"
        for controller, key, value in (("pids", "pids.max", processes),
                                       ("memory", "memory.limit_in_bytes", memory_bytes)):
            self._make(CGROUP_V1 / controller / name, {key: value})
        parent = v2_parent()
        if parent is not None and (parent / "cgroup.procs").exists():
            try:   # refused (EBUSY) where the parent holds processes itself: then grouping only
                (parent / "cgroup.subtree_control").write_text("+pids +memory")
            except OSError:
                pass
            self._make(parent / name, {"pids.max": processes, "memory.max": memory_bytes})

    def _make(self, path: Path, settings: dict[str, int]):
        try:
            path.mkdir()
        except OSError:
            return
        try:
            for key, value in settings.items():
                if (path / key).exists():
                    (path / key).write_text(str(value))
                    self.limited.add(key.split(".")[0])
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
            _remove(path, time.monotonic() + 1.0)


def remove_all(name_prefix: str, seconds: float = 5.0) -> None:
    """Every cgroup whose name starts with `name_prefix` (a killed grading worker's), once its processes are gone."""
    deadline = time.monotonic() + seconds
    parents = [CGROUP_V1 / "pids", CGROUP_V1 / "memory", v2_parent()]
    for parent in parents:
        if parent is not None and parent.is_dir():
            for path in parent.glob(f"{name_prefix}*"):
                _remove(path, deadline)


def _remove(path: Path, deadline: float) -> None:
    if (path / "cgroup.kill").exists():   # v2: every process in it, at once
        try:
            (path / "cgroup.kill").write_text("1")
        except OSError:
            pass
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
