"""exercises/<assignment>/ -> release/<assignment>/ (student version) and solutions/<assignment>/ (executed).

`release` rewrites both (an instructor's step, then commit); `check` regenerates into a scratch copy
of the course and compares, leaving the checkout untouched (the main job's step).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearSolutions, NbGraderPreprocessor

from autograder import assignments
from autograder.release import student_library

FOLDERS = ("release", "solutions")
LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"


def assignments_in(course_dir: Path) -> list[str]:
    return sorted(p.name for p in (course_dir / "exercises").iterdir() if p.is_dir() and not p.name.startswith("."))


def release(course_dir: Path, assignments: list[str] | None = None, *, solutions: bool = True,
            execute: bool = True) -> None:
    course_dir = course_dir.resolve()
    if not (course_dir / "nbgrader_config.py").exists():
        raise SystemExit(f"error: {course_dir} has no nbgrader_config.py")
    env = dict(os.environ)
    # nbgrader runs alembic from PATH; offline unless told otherwise so a missing model fails fast.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    with tempfile.TemporaryDirectory(prefix="gradebook-") as scratch:
        database = f"--CourseDirectory.db_url=sqlite:///{scratch}/gradebook.db"  # throwaway: only to generate
        for assignment in assignments or assignments_in(course_dir):
            steps = [["generate_assignment", assignment, "--force", "--log-level=WARN", database]]
            if solutions:
                steps.append(["generate_solution", assignment, "--force", "--log-level=WARN", database]
                             + ([] if execute else ["--Execute.enabled=False"]))
            for step in steps:
                print(f"nbgrader {step[0]} {assignment}", flush=True)
                subprocess.run(nbgrader + step, cwd=course_dir, env=env, check=True,
                               stdout=subprocess.DEVNULL)


def ship_library(folder: Path) -> None:
    """Beside every released notebook: requirements.txt, the environment its students install (pinned as the
    grader has it); and, where the notebook imports the course library, the library's student edition."""
    declared = assignments.ASSIGNMENTS.get(folder.name)
    if declared is None:
        return
    for old in folder.glob("*.whl"):
        old.unlink()
    if declared.ships_library:
        student_library.build_wheel(folder)
    (folder / "requirements.txt").write_text(student_library.requirements(LOCK, declared.packages))


class ShipStudentLibrary(NbGraderPreprocessor):
    """A step of nbgrader's generate_assignment: whatever runs it (our `release`, the instructor's own
    nbgrader, formgrader), the released folder gets the requirements and library its notebook needs."""

    def preprocess(self, nb, resources):
        coursedir = CourseDirectory(config=self.config)
        assignment = resources["nbgrader"]["assignment"]
        folder = Path(coursedir.format_path(coursedir.release_directory, ".", assignment))
        folder.mkdir(parents=True, exist_ok=True)
        ship_library(folder)
        return nb, resources


STUB_MESSAGE = "Write your solution here, then re-run this cell."   # in the course's ClearSolutions.code_stub


class NameEachStub(NbGraderPreprocessor):
    """After nbgrader's ClearSolutions: a stub's error names its cell ("apply_cfg: write your solution here..."),
    so a student who runs the notebook top to bottom sees which exercise is still open."""

    def preprocess_cell(self, cell, resources, index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and grade_id and STUB_MESSAGE in cell.source:
            cell.source = cell.source.replace(STUB_MESSAGE, f"{grade_id}: {STUB_MESSAGE[0].lower()}{STUB_MESSAGE[1:]}")
        return cell, resources


def course_release_steps(c) -> None:
    """For a course's nbgrader_config.py: generate_assignment names each stub (NameEachStub) and ships the
    student library (ShipStudentLibrary)."""
    steps = list(GenerateAssignment.class_traits()["preprocessors"].default())
    steps.insert(steps.index(ClearSolutions) + 1, NameEachStub)
    c.GenerateAssignment.preprocessors = [*steps, ShipStudentLibrary]


def comparable(notebook) -> list:
    """What must agree between committed and regenerated notebooks: types, sources, nbgrader metadata."""
    return [(c.cell_type, c.source, c.get("metadata", {}).get("nbgrader", {})) for c in notebook.cells]


def stale(course_dir: Path, assignments: list[str] | None = None) -> list[str]:
    """The committed release/ and solutions/ notebooks that differ from a fresh nbgrader run (outputs aside)."""
    course_dir = course_dir.resolve()
    names = assignments or assignments_in(course_dir)
    with tempfile.TemporaryDirectory(prefix="release-check-") as scratch:
        copy = Path(scratch)
        shutil.copytree(course_dir / "exercises", copy / "exercises")
        shutil.copy(course_dir / "nbgrader_config.py", copy)
        release(copy, names, execute=False)
        problems = []
        for assignment in names:
            for folder in FOLDERS:
                for fresh in sorted((copy / folder / assignment).glob("*.ipynb")):
                    committed = course_dir / folder / assignment / fresh.name
                    if not committed.exists() or comparable(nbformat.read(committed, as_version=4)) != comparable(
                            nbformat.read(fresh, as_version=4)):
                        problems.append(str(committed.relative_to(course_dir)))
            release_dir = copy / "release" / assignment
            for fresh in sorted(p for p in release_dir.iterdir() if p.suffix in (".whl", ".txt")):
                committed = course_dir / "release" / assignment / fresh.name
                if not committed.exists() or committed.read_bytes() != fresh.read_bytes():
                    problems.append(str(committed.relative_to(course_dir)))
        return problems


def check(course_dir: Path, assignments: list[str] | None = None) -> int:
    problems = stale(course_dir, assignments)
    for path in problems:
        print(f"stale: {path} differs from what nbgrader makes of exercises/", file=sys.stderr)
    if problems:
        print("run `python -m autograder release` and commit the result", file=sys.stderr)
        return 1
    print("release/ and solutions/ are up to date with exercises/")
    return 0
