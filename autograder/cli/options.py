"""Option handling shared by the commands: the course folder, the assignment choice, number bounds."""
from __future__ import annotations

import argparse
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
