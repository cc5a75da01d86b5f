"""For the instructor: why the grader failed on some submissions (never shown to students).

Each grading run that met grader errors writes OUT/grader-errors.log: per submission, the worker's own
problem (a crash, a timeout) and each failed check's traceback. The run's summary points to it, and a
later run regrades exactly these submissions (their stored outcomes are not reused).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from autograder.reports.report import write_atomically

LOG_NAME = "grader-errors.log"


def describe(student_path: str, outcome: dict) -> str:
    lines = [f"== {student_path}"]
    if outcome.get("grader_log"):
        lines.append(f"worker: {outcome['grader_log']}")
    for check in outcome.get("checks", []):
        if check.get("outcome") == "grader_error":
            lines += [f"check {check['name']!r} failed in the grader:", check.get("detail", "(no traceback)")]
    return "\n".join(lines)


def write(out_dir: Path, failed: list[tuple[str, dict]]) -> Path | None:
    """The log for this run's grader errors, as (assignment/student, outcome) pairs; None when there were none
    (an earlier run's log is removed then, so the folder never shows stale errors)."""
    path = out_dir / LOG_NAME
    if not failed:
        path.unlink(missing_ok=True)
        return None
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    text = f"grader errors of the run at {stamp}; rerun the same grade command to regrade just these\n\n"
    write_atomically(path, text + "\n\n".join(describe(name, outcome) for name, outcome in failed) + "\n")
    return path
