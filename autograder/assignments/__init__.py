"""The course's assignments: one folder each, found by looking, so adding a lesson edits nothing here.

`assignments/<name>/__init__.py` declares `ASSIGNMENT = Assignment(...)` (declaration.py) and
`assignments/<name>/checks/` holds its hidden checks; its source notebook is nbgrader's
`exercises/<name>/<name>.ipynb`. Everything else reads the declarations: the grader picks an
assignment's checks folder, the reports list its manually graded answers, the nbgrader sync fills the
hidden-check slots of its source notebook, and the tests hold the check markers and the notebook's
slot cells to these points.
"""
from __future__ import annotations

import pkgutil
from importlib import import_module
from pathlib import Path

from autograder.assignments.declaration import ASSIGNMENTS_DIR, COURSE_ROOT, Assignment  # noqa: F401 (re-exported)


def _declared() -> dict[str, Assignment]:
    found = []
    for folder in pkgutil.iter_modules([str(ASSIGNMENTS_DIR)]):
        if not folder.ispkg:
            continue
        declared = getattr(import_module(f"{__name__}.{folder.name}"), "ASSIGNMENT", None)
        if not isinstance(declared, Assignment) or declared.name != folder.name:
            raise ImportError(f"autograder/assignments/{folder.name}/__init__.py must set "
                              f"ASSIGNMENT = Assignment(name={folder.name!r}, ...)")
        found.append(declared)
    return {a.name: a for a in sorted(found, key=lambda a: (a.order, a.name))}


ASSIGNMENTS: dict[str, Assignment] = _declared()

# What a graded notebook may import: the grader's environment has these (requirements.lock), the
# notebooks' set-up text lists them, and an ImportError in student code names them.
STUDENT_PACKAGES = ("math", "numpy", "torch", "einops", "PIL", "matplotlib", "diffusers", "transformers")

ALL_GRADED_FUNCTIONS = frozenset(f for a in ASSIGNMENTS.values() for f in a.functions)


class UnknownAssignment(ValueError):
    pass


def get(name: str) -> Assignment:
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise UnknownAssignment(f"unknown assignment {name!r}; the course has: {', '.join(ASSIGNMENTS)}") from None


def by_notebook_name(filename: str) -> Assignment | None:
    return next((a for a in ASSIGNMENTS.values() if a.notebook == filename), None)


def owning_checks_file(path: Path) -> Assignment | None:
    """The assignment whose checks folder holds `path`."""
    path = Path(path).resolve()
    return next((a for a in ASSIGNMENTS.values() if a.checks_dir in path.parents), None)


def guess_from_functions(defined: set[str]) -> Assignment | None:
    """The assignment whose graded functions a notebook defines most of (None when it defines none)."""
    best = max(ASSIGNMENTS.values(), key=lambda a: len(defined & set(a.functions)))
    return best if defined & set(best.functions) else None
