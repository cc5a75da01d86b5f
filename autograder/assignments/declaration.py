"""What an assignment declares: its notebook, graded functions, points and how its cells are graded.

Each assignment's folder (`assignments/<name>/__init__.py`) makes one `Assignment` named `ASSIGNMENT`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ASSIGNMENTS_DIR = Path(__file__).resolve().parent
COURSE_ROOT = ASSIGNMENTS_DIR.parent.parent   # exercises/, release/ and solutions/ sit here


@dataclass(frozen=True)
class Assignment:
    name: str                       # nbgrader's assignment id: exercises/<name>/, submitted/<student>/<name>/
    title: str
    functions: dict[str, float]     # graded function -> points of its hidden checks
    manual: dict[str, float] = field(default_factory=dict)   # grade_id of a hand-graded answer cell -> points
    # grade_ids of the student's own code cells that nothing grades (an experiment whose written
    # reflection is graded by hand): every other answer cell defines a graded function.
    experiments: tuple[str, ...] = ()
    # grade_ids of cells the grading run does not need to do, only to define: a model load, training, a
    # figure nobody sees there, the student's own Exercise 4 picture. Their imports, functions, classes
    # and call-free assignments run (submission.definitions_of); the rest does not. Locked or not.
    definitions_only: tuple[str, ...] = ()
    # grade_id of each visible test cell -> the points of the hidden checks that ask the same (those marked
    # visible=True): what a GitHub Classroom push reports before the hidden checks have run.
    visible_tests: dict[str, float] = field(default_factory=dict)
    # Whether its notebook imports the course library: the release then ships the student edition
    # (student_library.py) beside it.
    ships_library: bool = False
    # What its students install beyond what every lesson needs (student_library.STUDENT_REQUIREMENTS): the
    # release's requirements.txt pins them, with all they pull in, at requirements.lock's versions.
    packages: tuple[str, ...] = ()
    # grade_ids a GitHub Classroom push leaves out when it runs the visible tests (None: definitions_only,
    # when the visible tests need none of those cells).
    push_skips: tuple[str, ...] | None = None
    # Whether its checks run Exercise 4's text-to-image pipeline: the grade command then loads one for all
    # its workers (pipeline/server.py).
    uses_pipeline: bool = False
    # The pipeline calls its checks make for the trusted images whatever the student wrote, as (prompt, guidance
    # scale, steps, seed), exactly as they call sd_pipeline.generate: a run's pipeline server makes them as soon
    # as it has loaded, side by side in its lanes on a CPU.
    reference_calls: tuple[tuple[str, float, int, int], ...] = ()
    # Whether its checks also run functions on PyTorch's meta device (a GPU's stand-in): the sandbox then
    # loads those kernels once (a second) instead of in every function's process.
    device_checks: bool = False
    # Where it comes in the course: lists and score tables follow this, then the name.
    order: int = 100

    @property
    def skipped_on_push(self) -> tuple[str, ...]:
        return self.definitions_only if self.push_skips is None else self.push_skips

    @property
    def notebook(self) -> str:
        """The file name students submit."""
        return f"{self.name}.ipynb"

    @property
    def release_notebook(self) -> Path:
        """What students got: its locked cells are the ones the grading run uses."""
        return COURSE_ROOT / "release" / self.name / self.notebook

    @property
    def checks_dir(self) -> Path:
        return ASSIGNMENTS_DIR / self.name / "checks"

    @property
    def points(self) -> float:
        return sum(self.functions.values())

    @staticmethod
    def slot_id(function: str) -> str:
        """grade_id of the source notebook's cell that holds `function`'s hidden-check points for nbgrader."""
        return f"hidden_{function}"
