"""What student code must never read, whatever the confinement.

Under bubblewrap the sandbox mounts only what it needs, so nothing else is there to read. Without
namespaces the student's user sees the host's files: everything of the course's checkout is closed to
it (chmod go-rwx) but the Python environment the sandbox runs (a venv inside the checkout stays
reachable), along with the hidden checks and references wherever they are installed, and what the
grade command adds (the submissions, the reports, a platform's metadata) through AUTOGRADER_PRIVATE.
"""
from __future__ import annotations

import os
from pathlib import Path

from autograder.assignments import ASSIGNMENTS_DIR, COURSE_ROOT
from autograder.release import student_library
from autograder.sandbox.bwrap import python_roots

PRIVATE_ENVIRONMENT = "AUTOGRADER_PRIVATE"


def private_paths() -> list[Path]:
    paths = [ASSIGNMENTS_DIR, COURSE_ROOT / "solutions", COURSE_ROOT / "exercises", student_library.reference_file()]
    paths += checkout_entries()
    paths += [Path(p) for p in os.environ.get(PRIVATE_ENVIRONMENT, "").split(os.pathsep) if p]
    return [p for p in dict.fromkeys(paths) if p.exists()]


def checkout_entries() -> list[Path]:
    """Every entry at the top of the checkout but those leading to the Python environment."""
    needed = [Path(root) for root in python_roots()]
    if any(root == COURSE_ROOT or root in COURSE_ROOT.parents for root in needed):
        return []   # an installed grader, not a checkout: its folder is part of the Python environment
    try:
        entries = sorted(COURSE_ROOT.iterdir())
    except OSError:
        return []
    return [entry for entry in entries
            if not any(root == entry.resolve() or entry.resolve() in root.parents for root in needed)]


def add_private(*paths: Path) -> None:
    """Also closed to student code in this process and the workers it starts (namespace-free mode)."""
    current = [p for p in os.environ.get(PRIVATE_ENVIRONMENT, "").split(os.pathsep) if p]
    os.environ[PRIVATE_ENVIRONMENT] = os.pathsep.join(dict.fromkeys(current + [str(p) for p in paths]))
