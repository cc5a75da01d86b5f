"""Two grading runs of a class -> who moves, by how much, on which checks and why; read before anything is synced.

A student's result changed when their total, a check's outcome or score, a failed check's message, the
set of checks, or why their notebook could not be graded changed. Timings and the grader's own
bookkeeping (fingerprints, paths) do not count. `diff --acknowledge` records in the new run that a
person read the diff of exactly these two runs (a digest of both runs' stored outcomes); a sync told to
require it refuses anything else, including a run regraded after the acknowledgement.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from autograder import assignments
from autograder.reports import report

ACKNOWLEDGED = ".diff-acknowledged.json"
PREVIOUS_RUN = ".previous-run"   # OUT/.previous-run/: the outcomes a regrade into OUT replaced, for the class report


@dataclass
class CheckChange:
    name: str
    old: dict | None     # outcome, score, max_score, message; None: the check was not there
    new: dict | None


@dataclass
class Move:
    assignment: str
    student: str
    old_total: float | None   # None: not in that run
    new_total: float | None
    maximum: float
    checks: list[CheckChange] = field(default_factory=list)
    old_problem: str = ""
    new_problem: str = ""

    @property
    def delta(self) -> float:
        return (self.new_total or 0.0) - (self.old_total or 0.0)


def problem(outcome: dict) -> str:
    return outcome.get("notebook_error") or outcome.get("error") or ""


def _check_result(check: dict) -> tuple:
    return (check["outcome"], check["score"], check["max_score"],
            "" if check["outcome"] == "passed" else check.get("message", ""))


def _check_changes(old: dict, new: dict) -> list[CheckChange]:
    before = {c["name"]: c for c in old.get("checks", [])}
    after = {c["name"]: c for c in new.get("checks", [])}
    return [CheckChange(name, before.get(name), after.get(name)) for name in [*before, *(n for n in after if n not in before)]
            if name not in before or name not in after or _check_result(before[name]) != _check_result(after[name])]


def _move(name: str, student: str, old: dict | None, new: dict | None) -> Move | None:
    old_total = report.outcome_totals(old)[0] if old is not None else None
    new_total = report.outcome_totals(new)[0] if new is not None else None
    maximum = report.outcome_totals(new if new is not None else old)[1]
    move = Move(name, student, old_total, new_total, maximum, _check_changes(old or {}, new or {}),
                problem(old or {}), problem(new or {}))
    unchanged = (old is not None and new is not None and not move.checks and old_total == new_total
                 and move.old_problem == move.new_problem)
    return None if unchanged else move


def assignments_in(*runs: Path) -> list[str]:
    return sorted(name for name in assignments.ASSIGNMENTS if any((Path(run) / name).is_dir() for run in runs))


def compare(old_run: Path, new_run: Path) -> list[Move]:
    """Every student whose result differs between the two --out folders, biggest moves first."""
    moves = []
    for name in assignments_in(old_run, new_run):
        old = report.stored_outcomes(Path(old_run) / name)
        new = report.stored_outcomes(Path(new_run) / name)
        for student in sorted(set(old) | set(new)):
            move = _move(name, student, old.get(student), new.get(student))
            if move:
                moves.append(move)
    return sorted(moves, key=lambda m: (m.assignment, -abs(m.delta), m.student))


def _total(value: float | None) -> str:
    return "absent" if value is None else f"{value:g}"


def _first_line(text: str, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def _check_text(check: dict | None) -> str:
    if check is None:
        return "absent"
    message = _first_line(check.get("message", ""))
    return f"{check['outcome']} {check['score']:g}/{check['max_score']:g}" + (f" ({message})" if message else "")


def render_text(moves: list[Move], old_run: Path, new_run: Path) -> str:
    if not moves:
        return f"no student's result differs between {old_run} and {new_run}"
    lines = [f"{len(moves)} results differ between {old_run} (old) and {new_run} (new):"]
    for move in moves:
        lines.append(f"\n{move.assignment}/{move.student}: {_total(move.old_total)} -> {_total(move.new_total)} "
                     f"of {move.maximum:g} ({move.delta:+g})")
        if move.old_problem != move.new_problem:
            lines.append(f"  not graded: {move.old_problem or '-'} -> {move.new_problem or '-'}")
        for change in move.checks:
            lines += [f"  {change.name}", f"    old: {_check_text(change.old)}", f"    new: {_check_text(change.new)}"]
    return "\n".join(lines)


def keep_previous(out_dir: Path, names: list[str], source: Path | None = None) -> Path:
    """Copies the outcomes now stored for these assignments (in OUT, or in `source` where they were moved aside)
    to OUT/.previous-run/, replacing an older copy, before a regrade replaces them."""
    kept = Path(out_dir) / PREVIOUS_RUN
    for name in names:
        shutil.rmtree(kept / name, ignore_errors=True)
        for path in sorted((Path(source or out_dir) / name).glob(f"*/{report.OUTCOME_FILE}")):
            target = kept / name / path.parent.name / report.OUTCOME_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return kept


def digest(run: Path) -> str:
    """What the run's results are: every stored outcome, byte for byte."""
    hashed = hashlib.sha256()
    for path in sorted(Path(run).glob(f"*/*/{report.OUTCOME_FILE}")):
        hashed.update(str(path.relative_to(run)).encode() + b"\0" + path.read_bytes())
    return hashed.hexdigest()


def acknowledge(old_run: Path, new_run: Path, moves: list[Move]) -> Path:
    path = Path(new_run) / ACKNOWLEDGED
    report.write_atomically(path, json.dumps({
        "old": digest(old_run), "new": digest(new_run), "old_run": str(Path(old_run).resolve()),
        "moved": [f"{m.assignment}/{m.student}" for m in moves],
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}, indent=2))
    return path


def unacknowledged(old_run: Path, new_run: Path) -> str | None:
    """Why `new_run` may not be synced yet (None: its diff against `old_run` was acknowledged as it is now)."""
    try:
        marker = json.loads((Path(new_run) / ACKNOWLEDGED).read_text())
    except (OSError, ValueError):
        return (f"the regrade diff of {new_run} against {old_run} was never acknowledged: read "
                f"`python -m autograder diff {old_run} {new_run}`, then run it again with --acknowledge")
    if marker.get("old") != digest(old_run) or marker.get("new") != digest(new_run):
        return (f"{new_run} or {old_run} changed since its regrade diff was acknowledged: read "
                f"`python -m autograder diff {old_run} {new_run}` again, then acknowledge it")
    return None
