"""`export`: the class's totals as a Canvas or Moodle gradebook import file (CSV)."""
from __future__ import annotations

import sys
from pathlib import Path

from autograder import assignments
from autograder.cli import options


def run(args) -> int:
    from autograder.cli.diff import refuse_unacknowledged
    from autograder.reports import lms_export, report

    allowed = lms_export.CANVAS_ID_COLUMNS if args.format == "canvas" else lms_export.MOODLE_ID_COLUMNS
    if args.id_column and args.id_column not in allowed:
        print(f"error: --id-column for {args.format} is one of {', '.join(allowed)}", file=sys.stderr)
        return 2
    out_dir = Path(args.out)
    refuse_unacknowledged(args, out_dir)
    names = options.graded_assignments(out_dir, args.assignment)
    for name in names:
        outcomes = report.stored_outcomes(out_dir / name)
        path = out_dir / name / f"{args.format}.csv"
        report.write_atomically(path, lms_export.export(outcomes, assignments.get(name), args.format, args.id_column))
        print(f"{args.format} gradebook import for {len(outcomes)} students: {path}")
    return 0


def register(commands) -> None:
    from autograder.cli.diff import add_requirement
    from autograder.reports.lms_export import CANVAS_ID_COLUMNS, FORMATS, MOODLE_ID_COLUMNS

    export = commands.add_parser("export", help="totals as a Canvas or Moodle gradebook import file",
                                 description="Writes OUT/<assignment>/<format>.csv from the totals of grades.csv.")
    export.add_argument("format", choices=FORMATS)
    export.add_argument("out", metavar="OUT", help="the --out folder of `grade`")
    options.add_assignment(export, "--assignment", help="only this assignment (default: every one graded in OUT)")
    export.add_argument("--id-column", choices=sorted({*CANVAS_ID_COLUMNS, *MOODLE_ID_COLUMNS}),
                        help="the LMS column the students' folder names go in (Canvas: id, sis_user_id or "
                             "sis_login_id, default sis_login_id; Moodle: username, idnumber or email, default "
                             "username)")
    add_requirement(export)
    export.set_defaults(run=run)
