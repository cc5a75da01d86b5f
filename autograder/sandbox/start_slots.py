"""How many sandboxes of one grading run may start at once: one per CPU, less one while the pipeline server loads.

A sandbox's start is a Python that imports torch and matplotlib (~1.5 s of CPU), and the pipeline server's
load is one chain of imports (diffusers, ~3 s) that every worker's first Exercise 4 check waits for. Started
all at once on two CPUs, the server got two thirds of one and both workers then sat waiting for it. So
while the server loads, the sandboxes start at most CPUs - 1 at a time and the server keeps a CPU.

The grade command makes a folder of slot files (one per CPU) and a marker the server removes once it has
loaded; a starting sandbox holds a lock (flock) on one slot file. A process that dies lets go of its lock,
so a killed worker or server never holds up the others.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

ENVIRONMENT = "AUTOGRADER_START_SLOTS"   # the folder, in the workers' and the server's environment
LOADING = "pipeline-loading"
POLL_SECONDS = 0.02


def prepare(folder: Path, cpus: int, pipeline_loading: bool) -> dict[str, str]:
    """The slots for a run on `cpus` CPUs; the environment that hands them to its workers and server."""
    folder.mkdir()
    for index in range(max(1, cpus)):
        (folder / f"slot-{index}").touch()
    if pipeline_loading:
        (folder / LOADING).touch()
    return {ENVIRONMENT: str(folder)}


def loading_in(folder: Path, pid: int) -> None:
    """The grade command names the server process that loads: a server that died loading frees its CPU too."""
    marker = folder / LOADING
    if marker.exists():
        marker.write_text(str(pid))


def pipeline_loaded() -> None:
    """Called by the pipeline server once its pipeline is loaded (or failed to): every CPU is the sandboxes' again."""
    folder = os.environ.get(ENVIRONMENT)
    if folder:
        Path(folder, LOADING).unlink(missing_ok=True)


def _loading(folder: Path) -> bool:
    try:
        pid = (folder / LOADING).read_text().strip()
    except OSError:
        return False
    if not pid:
        return True   # the server is being started
    return _alive(pid)


def _alive(pid: str) -> bool:
    """Whether the server still runs. It died before it had loaded (killed for its memory, say) when it is gone or a
    zombie: the grade command, its parent, reaps it only at the end of the run."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _free_slots(folder: Path) -> list[Path]:
    slots = sorted(folder.glob("slot-*"), key=lambda path: int(path.name.split("-")[1]))
    return slots[:max(1, len(slots) - (1 if _loading(folder) else 0))]


@contextmanager
def slot():
    """Held while a sandbox starts; outside a grade command's run (no slots), at once."""
    folder = os.environ.get(ENVIRONMENT)
    if not folder or not Path(folder).is_dir():
        yield
        return
    while True:
        free = _free_slots(Path(folder))
        if not free:   # the run's folder is gone: nothing to share any more
            yield
            return
        for path in free:
            handle = open(path, "rb")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            try:
                yield
            finally:
                handle.close()   # the lock goes with the file
            return
        time.sleep(POLL_SECONDS)
