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
from autograder.sandbox.modes import MODES, NO_SANDBOX_WARNING, sandbox_mode
from autograder.sandbox.student_process import FunctionProcess, NotDefined, NotebookProcess, StudentError
from autograder.sandbox.values import trusted_function_handler
from autograder.sandbox.zygote_host import shared_sandbox
from autograder.pipeline.spec import PipelineSpec, device_argument
from autograder.intake.submission import SubmissionError, extract_student_code, locked_cells, release_digest

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
    config.stash[RESULTS] = {"checks": [], "started": time.time()}


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


MAX_CELL_NOTES = 10   # failed cells named in the feedback; report.py bounds each text


class Submission:
    """The notebook under test: its cells, run once in the sandbox, and its graded functions."""

    RESTARTS = 2   # fresh runs of the notebook after one was killed (a function that hung, say)

    def __init__(self, path: Path, assignment: assignments.Assignment, mode: str, limits: Limits = Limits()):
        self.path, self.assignment, self.mode, self.limits = path, assignment, sandbox_mode(mode), limits
        self.sandbox = shared_sandbox(self.mode, limits, assignment.device_checks)
        self.sandbox.reset()   # nothing of the previous submission may still be there
        self.error = None
        self._functions: dict[tuple, StudentFunction] = {}
        self._notebook: NotebookProcess | None = None
        self._runs = 0
        self.run_notes: list[dict] = []
        provided = provided_cells(assignment)
        self.release = release_digest(provided)
        try:
            self.code = extract_student_code(path, provided, assignment.definitions_only)
        except SubmissionError as error:
            self.code, self.error = None, str(error)
        else:
            self.error = wrong_assignment(self.code, assignment)

    def function(self, name: str, trusted: dict | None = None):
        """The student's `name`; while it runs, the notebook's functions named in `trusted` are the grader's
        (its versions as values), so that a mistake in one graded function costs points only there."""
        key = (name, tuple(sorted(trusted or {})))
        if key not in self._functions:
            self._functions[key] = StudentFunction(self, name, trusted or {})
        return self._functions[key]

    def notebook(self) -> NotebookProcess:
        """The notebook after its run, started (or started again after a kill) when first needed."""
        if self._notebook is not None and self._notebook.alive:
            return self._notebook
        if self._runs > self.RESTARTS:
            raise StudentError(self._notebook.dead_reason)
        self._runs += 1
        # A run again after a kill: the cells the first run had to leave out stay out from the start.
        stopped = {note["number"] for note in self.run_notes if "stopped" in note}
        cells = [{"number": c.number, "source": c.source} for c in self.code.cells if c.number not in stopped]
        self._notebook = NotebookProcess(cells, self.sandbox)
        try:
            self._notebook.start()
        except StudentError as error:   # a run that failed once fails again: no function gets another
            self.error = f"the notebook could not be run for grading: {error}"
            raise StudentError(self.error) from None
        if not self.run_notes:
            self.run_notes = self._notebook.notes
        return self._notebook

    def why_not_defined(self, function: str) -> str:
        """The error of the cell that holds `function`'s definition, when that cell failed in the run."""
        failed = {note["number"]: note for note in self.run_notes}
        for cell in reversed(self.code.cells_defining(function)):
            if cell.number in failed:
                note = failed[cell.number]
                return (f"; code cell {cell.number}, which defines it, failed before the definition ran:\n"
                        f"{note.get('error') or note.get('stopped', '')}")
        return ""

    def notes(self) -> list[str]:
        """What the student should know about their notebook: cells ignored, cells that failed in the run."""
        provided = {c.number for c in self.code.cells if c.provided} if self.code else set()
        lines = list(self.code.skipped_cells) if self.code else []
        for note in self.run_notes[:MAX_CELL_NOTES]:
            whose = "the provided code cell" if note["number"] in provided else "code cell"
            if "stopped" in note:
                lines.append(f"{whose} {note['number']} was left out of the grading run: {note['stopped']}")
            else:
                lines.append(f"{whose} {note['number']} raised an error when the notebook was run from the top "
                             f"for grading; the cells after it still ran:\n{note.get('error', '')}")
        if len(self.run_notes) > MAX_CELL_NOTES:
            lines.append(f"... and {len(self.run_notes) - MAX_CELL_NOTES} more cells failed in the grading run")
        return lines

    def close(self):
        if self._notebook is not None:
            self._notebook.close()
        self.sandbox.reset()



class ReleaseMissing(RuntimeError):
    """The grader cannot restore the locked cells: the instructor's set-up, never the student's fault."""


def provided_cells(assignment: assignments.Assignment) -> dict[str, str]:
    """The release's locked cells, which the grading run uses whatever the submission did to them."""
    try:
        return locked_cells(assignment.release_notebook)
    except (OSError, ValueError, KeyError) as error:
        raise ReleaseMissing(f"the grader has no readable copy of the release, {assignment.release_notebook} "
                             f"({error}): it cannot restore the locked cells, so it grades nothing") from None


def wrong_assignment(code, assignment: assignments.Assignment) -> str | None:
    """A message when the notebook defines none of this assignment's functions but another's."""
    defined = {name for name in assignments.ALL_GRADED_FUNCTIONS if code.defines(name)}
    if defined & set(assignment.functions):
        return None
    other = assignments.guess_from_functions(defined)
    if other is None or other is assignment:
        return None
    return (f"this is not the {assignment.title} notebook: it defines {', '.join(sorted(defined))} from "
            f"{other.title} ({other.notebook}). Submit {assignment.notebook} here, with "
            f"{', '.join(f'{f}()' for f in assignment.functions)}.")


class StudentFunction:
    """Calls one of the student's functions in the sandbox; raises StudentError when it fails."""

    def __init__(self, submission: Submission, name: str, trusted: dict | None = None):
        self.submission, self.name, self.trusted = submission, name, trusted or {}
        self.process: FunctionProcess | None = None
        self.failure = None
        # shared with the process: handlers for calls back from the sandbox
        self.callbacks = {f"trusted:{other}": trusted_function_handler(version)
                          for other, version in self.trusted.items()}

    def _ensure_open(self):
        if self.failure:
            raise StudentError(self.failure)
        if self.process is not None and self.process.is_open:
            return
        try:
            if self.submission.error:
                raise StudentError(self.submission.error)
            self.process = self.submission.notebook().open(self.name, list(self.trusted))
        except NotDefined as error:
            self.failure = f"{error}{self.submission.why_not_defined(self.name)}"
            raise StudentError(self.failure) from None
        except StudentError as error:
            self.failure = str(error)
            raise
        self.process.callbacks = self.callbacks

    def __call__(self, *args, **kwargs):
        self._ensure_open()
        try:
            return self.process.call(*args, **kwargs)
        except StudentError:
            if self.process.dead_reason:
                self.failure = self.process.dead_reason
            raise

    @property
    def inputs_after_last_call(self):
        return self.process.last_inputs_after


@pytest.fixture(scope="session")
def student(request):
    config = request.config
    limits = Limits(call_seconds=config.getoption("--call-timeout"), cell_seconds=config.getoption("--cell-timeout"))
    submission = Submission(Path(config.getoption("--submission")), submission_assignment(config),
                            config.getoption("--sandbox"), limits)
    config.stash[RESULTS].update(sandbox=submission.mode, submission=str(submission.path),
                                 notebook_error=submission.error, release=submission.release)
    yield submission
    submission.close()
    config.stash[RESULTS]["skipped_cells"] = submission.notes()


# What a check raises when the student's code is at fault: its message is the feedback.
STUDENT_FAILURES = (CheckFailed, StudentError, SubmissionError)


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_makereport")
def report_a_students_failure_by_its_message(item, call):
    """A check the student failed is reported without pytest's traceback of it, which nobody reads and which
    took a sixth of a worker's CPU (Python 3.11 works out every frame's columns); grader errors keep theirs."""
    error = call.excinfo.value if call.excinfo else None
    if not isinstance(error, STUDENT_FAILURES):
        return None
    return pytest.TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1), "failed", str(error),
                             call.when, (), call.duration, call.start, call.stop, user_properties=item.user_properties)


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


def pytest_sessionfinish(session):
    config = session.config
    path = config.getoption("--results-json", None)
    if not path or not config.getoption("--submission", None):
        return
    data = config.stash[RESULTS]
    data["execution_time"] = round(time.time() - data.pop("started"), 3)
    Path(path).write_text(json.dumps(data, indent=2))


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(RESULTS, {}).get("sandbox") == "none":
        terminalreporter.write_line(NO_SANDBOX_WARNING, red=True, bold=True)
