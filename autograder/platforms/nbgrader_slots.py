"""nbgrader's autograde steps as our grading paths run them: the hidden-check slots filled from our
outcome instead of executed, and an instructor's reviews kept.

HiddenCheckScores stands in for nbgrader's Execute step: it gives every hidden-check slot cell of
the source notebook (`hidden_<function>`, see autograder.assignments) the outputs our checks
produced: the per-check report on stdout, then the score as the cell's result, which nbgrader takes
as partial credit with no manual grading needed. Visible-test cells are worth 0 points; hand-graded
answer cells are left to the formgrader.

KeepReviews, after nbgrader's SaveAutoGrades, keeps an instructor's review: nbgrader flags every
hand-scored cell "needs manual grade" again on each autograde, even when neither the submission nor
the cell's automatic score changed.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, SaveAutoGrades
from traitlets import Enum, Unicode

from autograder import assignments
from autograder.reports import report

REVIEWED = "autograder_reviewed"   # resources key: the reviews found before nbgrader's SaveAutoGrades


@contextmanager
def _submission_notebook(resources):
    """The gradebook, and this student's notebook in it (None before nbgrader first records it)."""
    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
        except MissingEntry:
            notebook = None
        yield gradebook, notebook


def remember_reviews(resources) -> None:
    """Notes, before nbgrader saves new scores, which grades an instructor reviewed and what they stood on."""
    with _submission_notebook(resources) as (_, notebook):
        if notebook is None:
            resources[REVIEWED] = ({}, None)
            return
        resources[REVIEWED] = ({g.name: g.auto_score for g in notebook.grades
                                if g.manual_score is not None and not g.needs_manual_grade},
                               notebook.assignment.timestamp)


class KeepReviews(NbGraderPreprocessor):
    """Clears nbgrader's new "needs manual grade" flag where the instructor's score still stands."""

    def preprocess(self, nb, resources):
        reviewed, timestamp = resources.get(REVIEWED, ({}, None))
        with _submission_notebook(resources) as (gradebook, notebook):
            # A new submission's answers need a new look; so does a score the checks changed.
            if notebook is None or notebook.assignment.timestamp != timestamp:
                return nb, resources
            for grade in notebook.grades:
                if grade.name in reviewed and grade.auto_score == reviewed[grade.name]:
                    grade.needs_manual_grade = False
            gradebook.db.commit()
        return nb, resources


class HiddenCheckScores(NbGraderPreprocessor):
    """Stands in for nbgrader's Execute: fills the slot cells with our stored outcome for this student."""

    graded_dir = Unicode(help="the grade command's --out folder").tag(config=True)
    hidden_visibility = Enum(report.VISIBILITIES, default_value="visible",
                             help="which checks the feedback details (as `grade --hidden-visibility`)").tag(config=True)

    def preprocess(self, nb, resources):
        remember_reviews(resources)
        assignment = assignments.get(resources["nbgrader"]["assignment"])
        student = resources["nbgrader"]["student"]
        outcome = json.loads((Path(self.graded_dir) / assignment.name / student / report.OUTCOME_FILE).read_text())
        slots = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell for cell in nb.cells}
        for function, points in assignment.functions.items():
            slot_id = assignment.slot_id(function)
            cell = slots.get(slot_id)
            if cell is None:   # the student deleted it: put it back, its score still belongs here
                cell = nbformat.v4.new_code_cell(f"# hidden checks for {function}()", metadata={"nbgrader": {
                    "grade": True, "solution": False, "locked": True, "points": points, "grade_id": slot_id,
                    "schema_version": 3}})
                nb.cells.append(cell)
            cell.outputs = slot_outputs(outcome, function, self.hidden_visibility)
        return nb, resources


def slot_outputs(outcome: dict, function: str, hidden_visibility: str = "visible") -> list:
    checks = [c for c in outcome.get("checks", []) if c["name"].split(":", 1)[0] == function]
    score = sum(c["score"] for c in checks if report.counted(c))
    shown = report.shown_checks(checks, hidden_visibility)
    lines = [f"{report.OUTCOME_MARK[c['outcome']]} {c['name']} ({c['score']:g}/{c['max_score']:g})"
             + (f"\n    {c['message'].splitlines()[0][:300]}" if c["outcome"] != "passed" and c["message"] else "")
             for c in shown]
    if len(shown) < len(checks):
        lines.append(f"{len(checks) - len(shown)} further checks {report.WHEN_SHOWN[hidden_visibility]}")
    if not checks:
        lines = [f"not graded: {outcome.get('notebook_error') or outcome.get('error') or 'no result'}"]
    return [nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": f"{score:g}"}, execution_count=1)]


def autograde_steps(execute_step) -> list:
    """nbgrader's autograde steps with Execute replaced by `execute_step` and KeepReviews after its saving."""
    steps = []
    for step in Autograde.class_traits()["autograde_preprocessors"].default():
        steps.append(execute_step if step is Execute else step)
        if step is SaveAutoGrades:
            steps.append(KeepReviews)
    if execute_step not in steps or KeepReviews not in steps:
        raise RuntimeError("nbgrader's autograde steps changed: update autograder/platforms/nbgrader_autograde.py")
    return steps
