"""Hidden-check scores -> nbgrader's gradebook, through nbgrader's own `autograde` step.

nbgrader autograde runs with its Execute step replaced by HiddenCheckScores (nbgrader_slots.py), so
no student code runs in nbgrader's kernel. Everything else is nbgrader's: the submission and its
timestamp (and late penalty) are recorded, locked cells are restored from the source,
`autograded/<student>/<assignment>/` is written for the formgrader and `generate_feedback`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder import assignments
from autograder.intake.submission import locked_cells, release_digest
from autograder.platforms.nbgrader_slots import HiddenCheckScores, autograde_steps
from autograder.reports import report


@dataclass
class Synced:
    student: str
    ok: bool
    message: str = ""
    skipped: bool = False   # nbgrader holds no such submission: nothing to write, not a failure


def course_config(course_dir: Path, graded_dir: Path, hidden_visibility: str = "visible") -> Config:
    config = Config()
    config_file = course_dir / "nbgrader_config.py"
    if config_file.exists():
        config.merge(PyFileConfigLoader(config_file.name, str(course_dir)).load_config())
    config.CourseDirectory.root = str(course_dir)
    config.Autograde.autograde_preprocessors = autograde_steps(HiddenCheckScores)
    config.HiddenCheckScores.graded_dir = str(graded_dir.resolve())
    config.HiddenCheckScores.hidden_visibility = hidden_visibility
    return config


def sync(course_dir: Path, assignment_name: str, graded_dir: Path, students: list[str] | None = None,
         hidden_visibility: str = "visible") -> list[Synced]:
    """Write the stored outcomes of `assignment_name` into the course's gradebook, one student at a time."""
    assignment = assignments.get(assignment_name)
    course_dir = course_dir.resolve()
    config = course_config(course_dir, graded_dir, hidden_visibility)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    released = Path(coursedir.format_path(coursedir.release_directory, ".", assignment.name)) / assignment.notebook
    try:
        course_release = release_digest(locked_cells(released))
    except (OSError, ValueError, KeyError):
        course_release = None   # a course that never released it through nbgrader: nothing to compare
    results = []
    for student, outcome in report.stored_outcomes(graded_dir / assignment.name).items():
        if students and student not in students:
            continue
        if course_release and outcome.get("release") and outcome["release"] != course_release:
            results.append(Synced(student, False, f"graded against a release whose locked cells differ from {released}: "
                                                  "release this course's exercises in the grader's checkout, then grade again"))
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
