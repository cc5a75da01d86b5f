"""Option handling shared by the commands: the course folder, the assignment choice, number bounds."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import assignments

PACKAGE_DIR = Path(__file__).resolve().parent.parent   # autograder/
COURSE_DIR = PACKAGE_DIR.parent                         # this checkout: exercises/, release/, requirements.lock


def add_assignment(parser: argparse.ArgumentParser, *flags: str, **settings) -> None:
    """The assignment argument, limited to the declared assignments."""
    parser.add_argument(*(flags or ("assignment",)), choices=sorted(assignments.ASSIGNMENTS), **settings)


def add_course_dir(parser: argparse.ArgumentParser, holding: str) -> None:
    parser.add_argument("--course-dir", default=str(COURSE_DIR), help=f"folder holding {holding}")


def add_hidden_visibility(parser: argparse.ArgumentParser, default: str, help: str) -> None:
    """When students see the checks beyond the notebook's own tests (Gradescope's visibilities)."""
    from autograder.reports.report import VISIBILITIES

    parser.add_argument("--hidden-visibility", choices=VISIBILITIES, default=default, help=help)


def at_least(args: argparse.Namespace, **bounds: float) -> None:
    """Refuses with one line when a numeric option is below its bound."""
    for name, least in bounds.items():
        if getattr(args, name) < least:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be at least {least} "
                             f"(got {getattr(args, name):g})")


def graded_assignments(out_dir: Path, assignment: str | None) -> list[str]:
    """The assignments graded in a --out folder of `grade` (or just the one asked for); refuses with one line
    (exit 2) when there is none."""
    from autograder.reports.regrade_diff import assignments_in

    names = [assignment] if assignment else assignments_in(out_dir)
    if not names or not all((Path(out_dir) / name).is_dir() for name in names):
        print(f"error: {out_dir} holds no graded {assignment or 'assignment'}: pass the --out folder of `grade`",
              file=sys.stderr)
        raise SystemExit(2)
    return names
