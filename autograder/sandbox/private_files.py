"""What student code must never read, whatever the confinement."""
from __future__ import annotations

import os
from pathlib import Path

from autograder.assignments import COURSE_ROOT, HERE as ASSIGNMENTS_DIR
from autograder.release import student_library


def private_paths() -> list[Path]:
    """What student code must never read: the hidden checks, the course's solutions, the library's
    reference versions of what students write, and what the grade
    command adds (its reports and the submissions) through AUTOGRADER_PRIVATE."""
    paths = [ASSIGNMENTS_DIR, COURSE_ROOT / "solutions", COURSE_ROOT / "exercises", student_library.reference_file()]
    paths += [Path(p) for p in os.environ.get("AUTOGRADER_PRIVATE", "").split(os.pathsep) if p]
    return [p for p in paths if p.exists()]
