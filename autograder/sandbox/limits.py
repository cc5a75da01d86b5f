"""The budgets of sandboxed student code: time per call, cell and run; memory, files, CPU, processes."""
from __future__ import annotations

from dataclasses import dataclass

ZYGOTE_BYTES = 1 << 30   # torch imported, before any child


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
