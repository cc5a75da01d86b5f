"""`release`: release/ and solutions/ made from exercises/ with nbgrader, or checked against a fresh build."""
from __future__ import annotations

from pathlib import Path

from autograder.cli import options


def run(args) -> int:
    from autograder.release.nbgrader_release import check, release

    if args.check:
        return check(Path(args.course_dir), args.assignments)
    release(Path(args.course_dir), args.assignments, solutions=not args.no_solutions)
    return 0


def register(commands) -> None:
    release = commands.add_parser("release", help="regenerate release/ and solutions/ from exercises/ with nbgrader")
    release.add_argument("assignments", nargs="*", help="assignment ids (default: every folder in exercises/)")
    options.add_course_dir(release, "nbgrader_config.py")
    release.add_argument("--no-solutions", action="store_true", help="only the student version")
    release.add_argument("--check", action="store_true",
                         help="change nothing: regenerate in a scratch folder and fail if the committed ones differ")
    release.set_defaults(run=run)
