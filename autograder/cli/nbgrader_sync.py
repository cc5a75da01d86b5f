"""`nbgrader-sync`: the hidden-check scores written into an nbgrader course's gradebook."""
from __future__ import annotations

import sys
from pathlib import Path

from autograder.cli import options
from autograder.cli.diff import add_requirement, refuse_unacknowledged


def run(args) -> int:
    from autograder.platforms.nbgrader_gradebook import sync

    course, graded = Path(args.course_dir), Path(args.graded)
    if not (course / "nbgrader_config.py").is_file():
        raise SystemExit(f"error: {course} is not an nbgrader course folder (no nbgrader_config.py there): "
                         "pass the course's folder as --course-dir")
    if not (graded / args.assignment).is_dir():
        raise SystemExit(f"error: {graded} holds no graded {args.assignment}: pass the --out folder of `grade`")
    refuse_unacknowledged(args, graded)
    results = sync(course, args.assignment, graded, args.student or None, args.hidden_visibility)
    for result in results:
        print(f"{'synced ' if result.ok else 'SKIPPED'} {result.student}"
              + (f": {result.message}" if result.message else ""))
    failed = [r for r in results if not r.ok and not r.skipped]
    print(f"{sum(r.ok for r in results)} of {len(results)} graded submissions written to the gradebook of {course}")
    if results and all(r.skipped for r in results):
        print(f"error: nbgrader holds none of these submissions in {course}: is it the right course, and have you "
              "run nbgrader collect?", file=sys.stderr)
    return 2 if failed or not results or all(r.skipped for r in results) else 0


def register(commands) -> None:
    sync = commands.add_parser("nbgrader-sync", help="write hidden-check scores into an nbgrader course's gradebook",
                               description="Runs nbgrader autograde without executing student code, filling each "
                                           "hidden-check slot cell with the scores that `grade` stored in --graded.")
    options.add_assignment(sync)
    sync.add_argument("--graded", required=True, metavar="DIR", help="the --out folder of `grade`")
    sync.add_argument("--course-dir", default=".", help="the nbgrader course folder (holding nbgrader_config.py)")
    sync.add_argument("--student", action="append", help="only this student (repeatable)")
    options.add_hidden_visibility(sync, "visible", "which checks nbgrader's feedback details: hidden, after_due_date "
                                                   "or after_published detail only those the notebook's own tests ask")
    add_requirement(sync)
    sync.set_defaults(run=run)
