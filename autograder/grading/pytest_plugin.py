"""pytest plugin for the hidden checks: `pytest autograder --submission NOTEBOOK [--assignment NAME]`.

Only the checks of the submission's assignment run (autograder/assignments/<name>/checks/); the
assignment is given, or inferred from the notebook's file name. Each check is a test marked
`@pytest.mark.check("function: what it checks", points=N)`. The
`student` fixture gives callables that run the submission's functions in the sandbox; every
assertion runs here, in the trusted process. With `--results-json` the outcome of every check is
written as JSON for the report step (autograder.reports.report).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from autograder import assignments
from autograder.grading.expectations import CheckFailed
from autograder.sandbox.limits import Limits
from autograder.sandbox.modes import MODES, NO_SANDBOX_WARNING
from autograder.grading.submission_under_test import Submission
from autograder.sandbox.student_process import StudentError
from autograder.pipeline.spec import PipelineSpec, device_argument
from autograder.intake.graded_code import graded_code_of
from autograder.intake.submission import SubmissionError

RESULTS = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("autograder", "hidden checks for a submitted notebook")
    group.addoption("--submission", metavar="NOTEBOOK", help="the submitted notebook to grade")
    group.addoption("--assignment", metavar="NAME", choices=sorted(assignments.ASSIGNMENTS),
                    help="which assignment's checks to run (default: from the notebook's file name)")
    group.addoption("--results-json", metavar="PATH", help="write every check's outcome to this JSON file")
    group.addoption("--sandbox", choices=MODES, default="auto",
                    help="how to confine student code (auto: bubblewrap where usable, else a user of its own; "
                         "none: unconfined, unsafe)")
    group.addoption("--call-timeout", type=float, default=Limits.call_seconds, metavar="SECONDS",
                    help="seconds one call of a student's function may take")
    group.addoption("--cell-timeout", type=float, default=Limits.cell_seconds, metavar="SECONDS",
                    help="seconds one notebook cell may take in the grading run (a slower cell is left out)")
    default_pipeline = PipelineSpec.from_environment()
    group.addoption("--sd-model", default=default_pipeline.model, metavar="ID_OR_DIR",
                    help="the text-to-image pipeline for Exercise 4 (default: $AUTOGRADER_SD_MODEL or bk-sdm-small)")
    group.addoption("--sd-device", type=device_argument, default=default_pipeline.device, metavar="cpu|cuda|cuda:N",
                    help="where that pipeline runs; cuda (default) reports the check as not run without a GPU")
    group.addoption("--require-gpu", action="store_true",
                    help="treat a GPU check that cannot run (no CUDA or no weights) as a grader error")


def pytest_configure(config):
    config.addinivalue_line("markers", "check(name, points, visible=False): a graded hidden check; name starts with "
                                       "'function: '; visible: the notebook's visible tests ask the same question")
    start_results(config)
    config.pluginmanager.register(StudentFailureReports(), "autograder-student-failure-reports")


def submission_assignment(config) -> assignments.Assignment:
    name = config.getoption("--assignment")
    if name:
        return assignments.get(name)
    notebook = Path(config.getoption("--submission"))
    found = assignments.by_notebook_name(notebook.name)
    if found is None:
        raise pytest.UsageError(f"cannot tell which assignment {notebook.name} belongs to: pass --assignment "
                                f"({', '.join(assignments.ASSIGNMENTS)})")
    return found


def pytest_collection_modifyitems(config, items):
    if not items:
        return
    if not config.getoption("--submission"):
        raise pytest.UsageError("the hidden checks grade one notebook: pytest autograder --submission NOTEBOOK")
    assignment = submission_assignment(config)
    config.stash[RESULTS]["assignment"] = assignment.name
    kept, dropped = [], []
    for item in items:
        if item.get_closest_marker("check") is None:
            raise pytest.UsageError(f"{item.nodeid} has no @pytest.mark.check(name, points)")
        (kept if assignments.owning_checks_file(item.path) is assignment else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def student(request):
    config = request.config
    limits = Limits(call_seconds=config.getoption("--call-timeout"), cell_seconds=config.getoption("--cell-timeout"))
    submission = Submission(Path(config.getoption("--submission")), submission_assignment(config),
                            config.getoption("--sandbox"), limits)
    config.stash[RESULTS].update(sandbox=submission.mode, submission=str(submission.path),
                                 notebook_error=submission.error, release=submission.release,
                                 graded_code=graded_code_to_keep(submission))
    yield submission
    submission.close()
    config.stash[RESULTS]["skipped_cells"] = submission.notes()


# The graded code kept with a submission's outcome, for the class report's similarity ranking: the code that was
# graded, without reading the notebook again at the end of the run. Bytes as written to outcome.json (JSON
# escapes each non-ASCII character in up to 12); a notebook of more is read again then.
MAX_KEPT_CODE = 200_000


def graded_code_to_keep(submission: Submission) -> dict[str, str] | None:
    if submission.code is None:
        return None
    try:
        code = graded_code_of(submission.code, submission.assignment)
    except Exception:   # whatever the notebook holds, keeping its code must not cost its grade
        return None
    return code if len(json.dumps(code)) <= MAX_KEPT_CODE else None


# What a check raises when the student's code is at fault: its message is the feedback.
STUDENT_FAILURES = (CheckFailed, StudentError, SubmissionError)


class StudentFailureReports:
    """A check the student failed is reported without pytest's traceback of it, which nobody reads and which
    took a sixth of a worker's CPU (Python 3.11 works out every frame's columns); grader errors keep theirs.
    A plugin object of its own: pytest only takes hooks named pytest_*, and this module's
    pytest_runtest_makereport is the results' wrapper."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        error = call.excinfo.value if call.excinfo else None
        if not isinstance(error, STUDENT_FAILURES):
            return None
        return pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed", str(error),
                                 call.when, (), call.duration, call.start, call.stop,
                                 user_properties=item.user_properties)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("check")
    if marker is None or not (report.when == "call" or report.outcome != "passed"):
        return
    name = marker.args[0] if marker.args else marker.kwargs["name"]
    points = float(marker.kwargs.get("points", marker.args[1] if len(marker.args) > 1 else 1))
    entry = {"name": name, "max_score": points, "score": 0.0, "outcome": "passed", "message": "",
             "visible": bool(marker.kwargs.get("visible", False))}   # the notebook's own tests ask the same
    notes = [str(value) for key, value in item.user_properties if key == "note"]
    if report.passed:
        entry["score"] = points
        entry["message"] = "\n".join(notes)
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        entry.update(outcome="not_run", message=reason.removeprefix("Skipped: "))
    else:
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, STUDENT_FAILURES):
            entry.update(outcome="failed", message="\n".join([str(error), *notes]))
        else:  # a bug in the check itself: never the student's fault, never shown to them verbatim
            entry.update(outcome="grader_error", message="the grader failed on this check; your instructor has been told",
                         detail=str(report.longrepr)[-3000:])
    results = item.config.stash[RESULTS]["checks"]
    results[:] = [r for r in results if r["name"] != name] + [entry]


def start_results(config, assignment: str | None = None) -> None:
    """A fresh record for the submission about to be graded (a worker's session grades one after another;
    the assignment is the session's, set once its checks are collected)."""
    config.stash[RESULTS] = {"checks": [], "started": time.time(), **({"assignment": assignment} if assignment else {})}


def write_results(config) -> None:
    """The submission's record to --results-json, once."""
    path = config.getoption("--results-json", None)
    data = config.stash[RESULTS]
    if not path or not config.getoption("--submission", None) or "started" not in data:
        return
    data["execution_time"] = round(time.time() - data.pop("started"), 3)
    Path(path).write_text(json.dumps(data, indent=2))


def pytest_sessionfinish(session):
    write_results(session.config)


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(RESULTS, {}).get("sandbox") == "none":
        terminalreporter.write_line(NO_SANDBOX_WARNING, red=True, bold=True)
