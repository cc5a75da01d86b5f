"""Hidden-check scores -> nbgrader's gradebook, through nbgrader's own `autograde` step.

nbgrader autograde runs with its Execute step replaced by HiddenCheckScores, so no student code runs
in nbgrader's kernel. Everything else is nbgrader's: the submission and its timestamp (and late
penalty) are recorded, locked cells are restored from the source, `autograded/<student>/<assignment>/`
is written for the formgrader and `generate_feedback`. HiddenCheckScores gives every hidden-check slot
cell of the source notebook (`hidden_<function>`, see autograder.assignments) the outputs our checks
produced: the per-check report on stdout, then the score as the cell's result, which nbgrader takes as
partial credit with no manual grading needed. Visible-test cells are worth 0 points; hand-graded
answer cells are left to the formgrader.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.apps.api import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Unicode
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder import assignments
from autograder.reports import report


class HiddenCheckScores(NbGraderPreprocessor):
    """Stands in for nbgrader's Execute: fills the slot cells with our stored outcome for this student."""

    graded_dir = Unicode(help="the grade command's --out folder").tag(config=True)

    def preprocess(self, nb, resources):
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
            cell.outputs = slot_outputs(outcome, function)
        return nb, resources


def slot_outputs(outcome: dict, function: str) -> list:
    checks = [c for c in outcome.get("checks", []) if c["name"].split(":", 1)[0] == function]
    score = sum(c["score"] for c in checks if report.counted(c))
    lines = [f"{report.OUTCOME_MARK[c['outcome']]} {c['name']} ({c['score']:g}/{c['max_score']:g})"
             + (f"\n    {c['message'].splitlines()[0][:300]}" if c["outcome"] != "passed" and c["message"] else "")
             for c in checks]
    if not checks:
        lines = [f"not graded: {outcome.get('notebook_error') or outcome.get('error') or 'no result'}"]
    return [nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": f"{score:g}"}, execution_count=1)]


@dataclass
class Synced:
    student: str
    ok: bool
    message: str = ""
    skipped: bool = False   # nbgrader holds no such submission: nothing to write, not a failure


def course_config(course_dir: Path, graded_dir: Path) -> Config:
    config = Config()
    config_file = course_dir / "nbgrader_config.py"
    if config_file.exists():
        config.merge(PyFileConfigLoader(config_file.name, str(course_dir)).load_config())
    config.CourseDirectory.root = str(course_dir)
    default_steps = Autograde.class_traits()["autograde_preprocessors"].default()
    steps = [HiddenCheckScores if step is Execute else step for step in default_steps]
    assert HiddenCheckScores in steps, "nbgrader's autograde steps changed: update the sync"
    config.Autograde.autograde_preprocessors = steps
    config.HiddenCheckScores.graded_dir = str(graded_dir.resolve())
    return config


def sync(course_dir: Path, assignment_name: str, graded_dir: Path, students: list[str] | None = None) -> list[Synced]:
    """Write the stored outcomes of `assignment_name` into the course's gradebook, one student at a time."""
    assignment = assignments.get(assignment_name)
    course_dir = course_dir.resolve()
    config = course_config(course_dir, graded_dir)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    results = []
    for student, outcome in report.stored_outcomes(graded_dir / assignment.name).items():
        if students and student not in students:
            continue
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment.name))
        if not submitted.is_dir():
            results.append(Synced(student, False, f"no nbgrader submission at {submitted}: run nbgrader collect",
                                  skipped=True))
            continue
        if not (submitted / assignment.notebook).is_file():
            results.append(Synced(student, False, f"nbgrader knows no {assignment.notebook} in {submitted}; "
                                                  f"our grade: {report.outcome_totals(outcome)[0]:g}", skipped=True))
            continue
        result = api.autograde(assignment.name, student, force=True, create=True)
        error = (result.get("error") or "").strip().splitlines()
        results.append(Synced(student, bool(result["success"]), error[-1] if error else ""))
    return results
