"""nbgrader's own `autograde` (formgrader's Autograde button too), made to grade through the sandbox.

Plain `nbgrader autograde` runs student code unconfined in the instructor's kernel and zeroes the
hidden-check slots. A course's nbgrader_config.py calls `grade_through_the_sandbox(c)`: nbgrader's
Execute step becomes SandboxedAutograde, which grades the student's submitted folder with
`python -m autograder grade` (results still valid from an earlier run are kept, so a click costs
seconds) and fills the slots from that outcome, as `nbgrader-sync` does. A grading run that fails
fails nbgrader's autograde with its reason: no slot is ever filled with a zero the checks did not give.
An instructor's reviews survive it (nbgrader_slots.KeepReviews).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from traitlets import List, Unicode

from autograder.platforms.nbgrader_slots import HiddenCheckScores, autograde_steps


class SandboxedAutograde(HiddenCheckScores):
    """Stands in for nbgrader's Execute: grades the submission in the sandbox, then fills the slots."""

    grade_options = List(Unicode(), help="extra options for `python -m autograder grade` "
                                         "(e.g. --sd-model, --sd-device, --workers)").tag(config=True)

    def preprocess(self, nb, resources):
        student, assignment = resources["nbgrader"]["student"], resources["nbgrader"]["assignment"]
        coursedir = CourseDirectory(config=self.config)
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
        graded = Path(coursedir.root, self.graded_dir or "graded")
        env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
        run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted), "--assignment", assignment,
                              "--out", str(graded), "--quiet", *self.grade_options],
                             capture_output=True, text=True, env=env)
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"grading {student}/{assignment} in the sandbox failed (exit {run.returncode}): {last}")
        self.graded_dir = str(graded)
        return super().preprocess(nb, resources)


def grade_through_the_sandbox(c, graded_dir: str = "graded", grade_options: list[str] | None = None,
                              hidden_visibility: str = "visible") -> None:
    """For a course's nbgrader_config.py: `nbgrader autograde` and formgrader grade with the sandbox;
    `hidden_visibility` as `grade --hidden-visibility`, for the feedback nbgrader generates."""
    c.Autograde.autograde_preprocessors = autograde_steps(SandboxedAutograde)
    c.SandboxedAutograde.graded_dir = graded_dir
    c.SandboxedAutograde.grade_options = list(grade_options or [])
    c.SandboxedAutograde.hidden_visibility = hidden_visibility
