"""Check outcomes -> what people read: Gradescope's results.json, a feedback page, grades.csv.

Outcomes are "passed", "failed", "not_run" (a check that could not run here, e.g. no GPU: worth
nothing either way and shown apart) and "grader_error" (our fault, never the student's).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path

from autograder import assignments

OUTCOME_FILE = "outcome.json"   # the raw outcome, kept so that an interrupted run can resume
OUTCOME_MARK = {"passed": "PASS", "failed": "FAIL", "not_run": "NOT RUN", "grader_error": "GRADER ERROR"}


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def counted(check: dict) -> bool:
    return check["outcome"] != "not_run"


def totals(checks: list[dict]) -> tuple[float, float]:
    kept = [c for c in checks if counted(c)]
    return sum(c["score"] for c in kept), sum(c["max_score"] for c in kept)


def outcome_totals(outcome: dict) -> tuple[float, float]:
    """Score and maximum; a submission that could not be graded at all is out of the assignment's points."""
    checks = outcome.get("checks", [])
    if checks or "assignment" not in outcome:
        return totals(checks)
    return 0.0, assignments.get(outcome["assignment"]).points


def manual_note(outcome: dict) -> str | None:
    assignment = assignments.ASSIGNMENTS.get(outcome.get("assignment", ""))
    if assignment is None or not assignment.manual:
        return None
    items = ", ".join(f"{grade_id} ({points:g} pt{'s' if points != 1 else ''})"
                      for grade_id, points in assignment.manual.items())
    return f"Graded by your instructor, not included above: {items}."


VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")   # Gradescope's, per test
WHEN_SHOWN = {"hidden": "are not shown to students", "after_due_date": "are shown after the due date",
              "after_published": "are shown once grades are published"}


def gradescope_results(outcome: dict, hidden_visibility: str = "visible") -> dict:
    """Gradescope's results.json for one submission (see the autograder specification). Checks that ask
    what the notebook's own tests ask are always visible; the others follow `hidden_visibility`."""
    checks = outcome.get("checks", [])
    score, _ = outcome_totals(outcome)
    notes = []
    if outcome.get("notebook_error"):
        notes.append(f"Your notebook could not be graded: {outcome['notebook_error']}")
    if outcome.get("error"):
        notes.append(outcome["error"])
    notes += [f"Note: {line}" for line in outcome.get("skipped_cells", []) + outcome.get("notes", [])]
    if manual_note(outcome):
        notes.append(manual_note(outcome))
    withheld = [c for c in checks if not c.get("visible")] if hidden_visibility != "visible" else []
    if withheld:
        notes.append(f"{len(withheld)} further checks ({sum(c['max_score'] for c in withheld):g} points) "
                     f"{WHEN_SHOWN[hidden_visibility]}.")
    tests = []
    for check in checks:
        test = {"name": check["name"], "score": check["score"], "max_score": check["max_score"],
                "output": check["message"], "visibility": "visible" if check.get("visible") else hidden_visibility}
        if check["outcome"] in ("passed", "failed"):
            test["status"] = check["outcome"]
        else:  # never shown as passed: failed, at no points (not run) or its points (grader error)
            test["name"] += f" [{OUTCOME_MARK[check['outcome']].lower()}]"
            test["status"] = "failed"
            test["max_score"] = 0.0 if check["outcome"] == "not_run" else check["max_score"]
            test["extra_data"] = {"outcome": check["outcome"]}
        tests.append(test)
    return {"score": round(score, 4), "execution_time": outcome.get("execution_time", 0.0),
            "output": "\n".join(notes), "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def shown_checks(checks: list[dict], hidden_visibility: str) -> list[dict]:
    """The checks a student sees in detail now: all of them, or only those the notebook's own tests ask."""
    return checks if hidden_visibility == "visible" else [c for c in checks if c.get("visible")]


def feedback_markdown(submission_id: str, outcome: dict, hidden_visibility: str = "visible") -> str:
    checks = shown_checks(outcome.get("checks", []), hidden_visibility)
    score, maximum = outcome_totals(outcome)
    lines = [f"# Feedback for {markdown_text(submission_id)}", "", f"**Score: {score:g} / {maximum:g}**", ""]
    for note in gradescope_results(outcome, hidden_visibility)["output"].splitlines():
        lines.append(f"> {markdown_text(note)}")
    if lines[-1] != "":
        lines.append("")
    for check in checks:
        points = f"{check['score']:g}/{check['max_score']:g}" if counted(check) else "not counted"
        lines.append(f"- **{OUTCOME_MARK[check['outcome']]}** {markdown_text(check['name'])} ({points})")
        if check["outcome"] != "passed" and check["message"]:
            fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", check["message"])), default=0))
            lines += [f"  {fence}text", *("  " + line for line in check["message"].splitlines()), f"  {fence}"]
    return "\n".join(lines) + "\n"


def stored_outcomes(assignment_dir: Path) -> dict[str, dict]:
    """Every outcome kept under out/<assignment>/, from this run and earlier ones: the whole class."""
    outcomes = {}
    for path in sorted(assignment_dir.glob(f"*/{OUTCOME_FILE}")):
        try:
            outcomes[path.parent.name] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return outcomes


def markdown_text(text: str) -> str:
    """Student text shown as literal text in Markdown: no emphasis, headings, links or HTML of its own."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", str(text))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "|")


def spreadsheet_text(text: str) -> str:
    """Text a spreadsheet shows as text, never runs as a formula (OWASP's CSV injection advice: a cell
    starting with = + - @ or a control character gets a leading apostrophe)."""
    text = str(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def grades_csv(outcomes: dict[str, dict], assignment: assignments.Assignment) -> str:
    names: list[str] = []
    for outcome in outcomes.values():
        for check in outcome.get("checks", []):
            if check["name"] not in names:
                names.append(check["name"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "assignment", *names, "total", "max_total", "manual_max", "problems"])
    for student in sorted(outcomes):
        outcome = outcomes[student]
        by_name = {c["name"]: c for c in outcome.get("checks", [])}
        cells = []
        for name in names:
            check = by_name.get(name)
            cells.append("" if check is None else "not run" if not counted(check) else f"{check['score']:g}")
        score, maximum = outcome_totals(outcome)
        problems = outcome.get("notebook_error") or outcome.get("error") or ""
        writer.writerow([spreadsheet_text(student), assignment.name, *cells, f"{score:g}", f"{maximum:g}",
                         f"{sum(assignment.manual.values()):g}", spreadsheet_text(problems)])
    return buffer.getvalue()


def function_totals(checks: list[dict]) -> dict[str, tuple[float, float]]:
    """Score per graded function, from the 'function: ...' prefix of the check names."""
    result: dict[str, tuple[float, float]] = {}
    for check in checks:
        if not counted(check):
            continue
        function = check["name"].split(":", 1)[0]
        score, maximum = result.get(function, (0.0, 0.0))
        result[function] = (score + check["score"], maximum + check["max_score"])
    return result


def score_table(outcomes: dict[str, dict], assignment: assignments.Assignment) -> str:
    functions = list(assignment.functions)
    header = ["student", *functions, "total"]
    rows = []
    for student in sorted(outcomes):
        outcome = outcomes[student]
        per_function = function_totals(outcome.get("checks", []))
        score, maximum = outcome_totals(outcome)
        rows.append([student, *(f"{per_function[f][0]:g}/{per_function[f][1]:g}" if f in per_function
                                else "not run" if outcome.get("checks") else "-" for f in functions),
                     f"{score:g}/{maximum:g}"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    render = lambda row: "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([render(header), render(["-" * w for w in widths]), *map(render, rows)])


def write_class(out_dir: Path, names) -> str:
    """Each assignment's grades.csv from every outcome stored under out_dir; what to print: their score tables."""
    shown = []
    for name in sorted(names):
        assignment, outcomes = assignments.get(name), stored_outcomes(out_dir / name)
        write_atomically(out_dir / name / "grades.csv", grades_csv(outcomes, assignment))
        shown += [f"\n{assignment.title} ({name}): {out_dir / name / 'grades.csv'}", score_table(outcomes, assignment)]
    return "\n".join(shown)


MAX_TEXT = 2000    # characters of one message or note in any report (student text can be anything)
MAX_NOTES = 30


def _cut(text, limit: int = MAX_TEXT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters]"


def bounded(outcome: dict) -> dict:
    """The outcome with every student-influenced text cut to size, so reports stay small whatever the input."""
    outcome = dict(outcome)
    outcome["checks"] = [{**c, "name": _cut(c["name"], 300), "message": _cut(c.get("message", "")),
                          **({"detail": _cut(c["detail"], 3000)} if "detail" in c else {})}
                         for c in outcome.get("checks", [])]
    for key in ("notebook_error", "error", "grader_log"):
        if outcome.get(key):
            outcome[key] = _cut(outcome[key])
    for key in ("notes", "skipped_cells"):
        lines = outcome.get(key) or []
        outcome[key] = [_cut(line, 500) for line in lines[:MAX_NOTES]] + (
            [f"... and {len(lines) - MAX_NOTES} more"] if len(lines) > MAX_NOTES else [])
    return outcome


def write_submission_reports(folder: Path, submission_id: str, outcome: dict, hidden_visibility: str = "visible") -> None:
    """outcome.json (everything, for the instructor), then what the student may see of it."""
    outcome = bounded(outcome)
    write_atomically(folder / OUTCOME_FILE, json.dumps(outcome, indent=2))
    write_student_reports(folder, submission_id, outcome, hidden_visibility)


def write_student_reports(folder: Path, submission_id: str, outcome: dict, hidden_visibility: str = "visible") -> None:
    """results.json and feedback.md, detailing the checks `hidden_visibility` shows now."""
    write_atomically(folder / "results.json", json.dumps(gradescope_results(outcome, hidden_visibility), indent=2))
    write_atomically(folder / "feedback.md", feedback_markdown(submission_id, outcome, hidden_visibility))
