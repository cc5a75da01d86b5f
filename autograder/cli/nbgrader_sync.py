"""`nbgrader-sync`: the hidden-check scores written into an nbgrader course's gradebook."""
from __future__ import annotations

from pathlib import Path

from autograder.cli import options


def run(args) -> int:
    from autograder.platforms.nbgrader_gradebook import sync

    results = sync(Path(args.course_dir), args.assignment, Path(args.graded), args.student or None)
    for result in results:
        print(f"{'synced ' if result.ok else 'SKIPPED'} {result.student}"
              + (f": {result.message}" if result.message else ""))
    failed = [r for r in results if not r.ok and not r.skipped]
    print(f"{sum(r.ok for r in results)} of {len(results)} graded submissions written to the gradebook of {args.course_dir}")
    return 2 if failed or not results else 0


def register(commands) -> None:
    sync = commands.add_parser("nbgrader-sync", help="write hidden-check scores into an nbgrader course's gradebook",
                               description="Runs nbgrader autograde without executing student code, filling each "
                                           "hidden-check slot cell with the scores that `grade` stored in --graded.")
    options.add_assignment(sync)
    sync.add_argument("--graded", required=True, metavar="DIR", help="the --out folder of `grade`")
    sync.add_argument("--course-dir", default=".", help="the nbgrader course folder (holding nbgrader_config.py)")
    sync.add_argument("--student", action="append", help="only this student (repeatable)")
    sync.set_defaults(run=run)
