"""How many threads a grading worker's own torch work (the pipeline of Exercise 4) may use right now.

The grade command starts one worker per CPU and gives each one thread: more would oversubscribe the
machine while all of them are busy. At the end of a class the queue runs dry and workers go idle one by
one while a slow submission (a sweep at a large size, say) still holds one; the command then writes a
larger share to a file every worker reads before each denoising step, so the CPUs that fell idle
help that submission finish.
"""
from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENT = "AUTOGRADER_CPU_SHARE"   # the file's path, set in each worker's environment


def available() -> int:
    """The CPUs this process may run on: a Slurm task's or a pinned container's, not the whole node's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write(path: Path, busy_workers: int, cpus: int | None = None) -> None:
    """Split the machine's CPUs among the workers still grading (atomically: workers read it any time)."""
    share = max(1, (cpus or available()) // max(1, busy_workers))
    partial = path.with_name(path.name + ".partial")
    partial.write_text(str(share))
    os.replace(partial, path)


def current() -> int | None:
    """The share the grade command last wrote, or None outside a grade command's worker."""
    path = os.environ.get(ENVIRONMENT)
    if not path:
        return None
    try:
        return max(1, int(Path(path).read_text()))
    except (OSError, ValueError):
        return None


def apply() -> None:
    """Set torch's thread count to the current share (cheap enough to call once per denoising step)."""
    share = current()
    if share is None:
        return
    import torch

    if torch.get_num_threads() != share:
        torch.set_num_threads(share)
