"""`diff`: who moves between two grading runs, by how much, on which checks and why; `--acknowledge` records it."""
from __future__ import annotations

import sys
from pathlib import Path


def run(args) -> int:
    from autograder.reports import regrade_diff

    old, new = Path(args.old), Path(args.new)
    for folder in (old, new):
        if not regrade_diff.assignments_in(folder):
            print(f"error: {folder} holds no graded assignment: pass two --out folders of `grade`", file=sys.stderr)
            return 2
    moves = regrade_diff.compare(old, new)
    print(regrade_diff.render_text(moves, old, new))
    if args.acknowledge:
        path = regrade_diff.acknowledge(old, new, moves)
        print(f"\nacknowledged: {path} (a sync given --require-acknowledged-diff {old} now accepts {new})")
    return 0


def add_requirement(parser) -> None:
    """The sync commands' option: refuse a run whose diff against OLD_OUT was not acknowledged as it is now."""
    parser.add_argument("--require-acknowledged-diff", metavar="OLD_OUT",
                        help="refuse (exit 2) unless `diff OLD_OUT <this run> --acknowledge` was run on the run as it "
                             "is now")


def refuse_unacknowledged(args, graded: Path) -> None:
    from autograder.reports import regrade_diff

    if args.require_acknowledged_diff:
        reason = regrade_diff.unacknowledged(Path(args.require_acknowledged_diff), graded)
        if reason:
            print(f"error: {reason}", file=sys.stderr)
            raise SystemExit(2)


def register(commands) -> None:
    diff = commands.add_parser("diff", help="who moves between two grading runs, before anything is synced",
                               description="Compares two --out folders of `grade`: each student whose result "
                                           "changed, old and new totals, the checks that changed with their old and "
                                           "new messages.")
    diff.add_argument("old", metavar="OLD_OUT")
    diff.add_argument("new", metavar="NEW_OUT")
    diff.add_argument("--acknowledge", action="store_true",
                      help="record in NEW_OUT that this diff was read (sync commands can require it)")
    diff.set_defaults(run=run)
