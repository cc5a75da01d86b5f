"""The submission as the hidden checks see it: its notebook run once in the sandbox, and each graded function
as a callable (`student.function(name)`) whose failures are StudentError. The pytest plugin's `student`
fixture makes one per grading session (pytest_plugin.py)."""
from __future__ import annotations

from pathlib import Path

from autograder import assignments
from autograder.intake.submission import SubmissionError, extract_student_code, locked_cells, release_digest
from autograder.sandbox.limits import Limits
from autograder.sandbox.modes import sandbox_mode
from autograder.sandbox.student_process import FunctionProcess, NotDefined, NotebookProcess, StudentError
from autograder.sandbox.values import trusted_function_handler
from autograder.sandbox.zygote_host import shared_sandbox


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
