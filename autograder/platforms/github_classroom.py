"""GitHub Classroom: the students' template repository, and hidden-check results in the format of
Classroom's grading reporter (classroom-resources/autograding-grading-reporter: base64 JSON
`{version, status, max_score, tests: [{name, status, score, message, ...}]}`; Classroom reads the
`Points X/Y` it writes, summing the tests' scores).

Trust: a student can edit every file of their repository, workflows included, so it holds no check and
no token (classroom/template). The hidden checks run in the instructor's private copy of this
repository (.github/workflows/classroom-grading.yml), which sends each result to the student's
repository as a repository_dispatch event; only what `details` allows goes into it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from autograder import assignments
from autograder.release import student_library
from autograder.reports import report

TEMPLATE = assignments.COURSE_ROOT / "classroom" / "template"
EVENT = "hidden-checks"          # the repository_dispatch type the student's workflow listens to
DETAILS = ("totals", "visible")  # hidden checks sent one by one, or as a total per graded function
MESSAGE_LIMIT = 500
CELL_TIMEOUT = 600               # seconds per cell in the visible-test run on GitHub's runners
STATUS = {"passed": "pass", "failed": "fail", "not_run": "error", "grader_error": "error"}
SENT, PENDING = "classroom-sent.json", "classroom-pending.json"
STATUS_CONTEXT = "course-grader/hidden-checks"   # the commit status the private grader sets

STUDENT_README = """# {title}

Work in `{notebook}`, then commit and push it. On every push, GitHub Actions (the Actions tab) runs
the notebook's visible tests and GitHub Classroom shows their points: a preview only. The hidden checks
run in your instructor's grader: when it has graded your latest commit (it looks every 15 minutes), a
second run named "Autograding Tests" shows the points of all {points:g}, and your commit gets the
status "course-grader/hidden-checks" with the same score, set by the grader's account. Your grade is the
one your instructor's grader records in its own repository; nothing in this repository (its workflows
included) can change it.

Set-up on your own machine: Python 3.11, then `pip install -r requirements.txt
--extra-index-url https://download.pytorch.org/whl/cpu` (the same versions the grader uses).
"""


def template(name: str, out: Path, course_dir: Path = assignments.COURSE_ROOT) -> Path:
    """The template repository of one assignment: what every student's repository starts from."""
    assignment = assignments.get(name)
    if not assignment.visible_tests:
        raise SystemExit(f"error: {name} declares no visible tests for GitHub Classroom (Assignment.visible_tests)")
    out = Path(out)
    shutil.copytree(TEMPLATE, out, dirs_exist_ok=True)
    shutil.copy2(assignment.release_notebook, out / assignment.notebook)
    for wheel in assignment.release_notebook.parent.glob("*.whl"):   # the course library, where it ships one
        shutil.copy2(wheel, out / wheel.name)
    # What students need (the push workflow runs the visible tests with nbclient), pinned as the grader has it.
    needs = ("nbformat", "nbclient") + assignment.packages
    (out / "requirements.txt").write_text(student_library.requirements(Path(course_dir) / "requirements.lock", needs))
    config = {"notebook": assignment.notebook, "points": assignment.points, "visible_tests": assignment.visible_tests,
              "skip": list(assignment.skipped_on_push), "cell_timeout": CELL_TIMEOUT}
    (out / ".github" / "classroom" / "assignment.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "README.md").write_text(STUDENT_README.format(title=assignment.title, notebook=assignment.notebook,
                                                         points=assignment.points))
    return out


def _test(name: str, status: str, score: float, message: str) -> dict:
    message = message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT] + " [...]"
    return {"name": name, "status": status, "score": score, "message": message, "line_no": 0, "test_code": ""}


def hidden_result(outcome: dict, details: str = "totals") -> dict:
    """The reporter's JSON for one graded submission. With `totals`, only the checks that mirror the
    notebook's visible tests keep their names and messages; the others become one line per function."""
    checks = outcome.get("checks", [])
    _, maximum = report.outcome_totals(outcome)
    tests = []
    problem = outcome.get("notebook_error") or outcome.get("error")
    if problem:
        tests.append(_test("notebook", "error", 0, problem))
    shown = [c for c in checks if details == "visible" or c.get("visible")]
    for check in shown:
        tests.append(_test(check["name"], STATUS[check["outcome"]], check["score"] if report.counted(check) else 0,
                           check["message"] if check["outcome"] != "passed" else ""))
    withheld = [c for c in checks if c not in shown]
    for function, (score, most) in report.function_totals(withheld).items():
        count = sum(1 for c in withheld if c["name"].split(":", 1)[0] == function and report.counted(c))
        tests.append(_test(f"{function}: {count} hidden checks", "pass" if score == most else "fail", score,
                           f"{score:g} of {most:g} points; the checks' names and messages are not shown"))
    not_run = [c for c in withheld if not report.counted(c)]
    if not_run:
        tests.append(_test(f"{len(not_run)} hidden checks", "error", 0, "could not run on this grader; not counted"))
    if not tests:
        tests.append(_test("notebook", "error", 0, "nothing was graded"))
    failing = {t["status"] for t in tests} - {"pass"}
    return {"version": 1, "status": "error" if problem else "fail" if failing else "pass",
            "max_score": maximum, "tests": tests}


def encoded(result: dict) -> str:
    """How a grading step hands its result to the reporter (its step output, then `<ID>_RESULTS`)."""
    return base64.b64encode(json.dumps(result).encode()).decode()


def _commit(clone: Path) -> str:
    answer = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True)
    return answer.stdout.strip() if answer.returncode == 0 else ""


def commit_status(outcome: dict) -> dict:
    """The body of a commit status on the graded commit. Its creator is the grader's token, which no
    student holds: the instructor (and the student) can tell it from any status a student makes."""
    score, maximum = report.outcome_totals(outcome)
    return {"state": "success" if maximum and score == maximum else "failure", "context": STATUS_CONTEXT,
            "description": f"hidden checks: {score:g}/{maximum:g} (the course's grader; this is the score that counts)"}


def payloads(graded: Path, name: str, clones: Path, prefix: str, outbox: Path, details: str = "totals") -> tuple[int, int]:
    """Writes outbox/<repository>.json (a repository_dispatch body) and outbox/<repository>.status.json (a
    commit status) for each student whose result changed since it was last sent, and outbox/manifest.tsv:
    repository, body, pending state, sent state, graded commit, status body. The sender renames pending to
    sent once GitHub accepted both. Returns (to send, unchanged)."""
    outbox.mkdir(parents=True, exist_ok=True)
    rows, unchanged = [], 0
    for clone in sorted(p for p in Path(clones).iterdir() if p.is_dir()):
        folder = Path(graded) / name / clone.name
        try:
            outcome = json.loads((folder / report.OUTCOME_FILE).read_text())
        except (OSError, ValueError):
            continue   # not graded (yet): nothing to say
        if outcome.get("grader_failed"):
            continue   # our fault: regraded on the next run, never reported to the student as their score
        body = {"event_type": EVENT, "client_payload": {
            "commit": _commit(clone), "result": encoded(hidden_result(outcome, details)),
            "notes": (outcome.get("skipped_cells", []) + outcome.get("notes", []))[:10]}}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        try:
            if json.loads((folder / SENT).read_text()).get("digest") == digest:
                unchanged += 1
                continue
        except (OSError, ValueError):
            pass
        repository = prefix + clone.name
        (outbox / f"{repository}.json").write_text(json.dumps(body))
        (outbox / f"{repository}.status.json").write_text(json.dumps(commit_status(outcome)))
        (folder / PENDING).write_text(json.dumps({"digest": digest, "commit": body["client_payload"]["commit"]}))
        rows.append("\t".join([repository, str(outbox / f"{repository}.json"), str(folder / PENDING), str(folder / SENT),
                               body["client_payload"]["commit"], str(outbox / f"{repository}.status.json")]))
    (outbox / "manifest.tsv").write_text("".join(row + "\n" for row in rows))
    return len(rows), unchanged
