"""`report`: the class report of a grading run, one self-contained HTML page per assignment."""
from __future__ import annotations

import sys
from pathlib import Path

from autograder.cli import options


def previous_of(out_dir: Path, given: str | None) -> Path | None:
    from autograder.reports.regrade_diff import PREVIOUS_RUN

    if given:
        return Path(given)
    kept = Path(out_dir) / PREVIOUS_RUN
    return kept if kept.is_dir() else None


def write_reports(out_dir: Path, names: list[str], previous: Path | None, similarity: bool = True) -> list[Path]:
    from autograder.reports import class_report

    return [class_report.write(out_dir, name, previous, similarity) for name in names]


def class_reports_after(out_dir: Path, names: list[str]) -> None:
    """The class reports at the end of `grade` or `merge`: the grades are stored already, so a report that
    fails says so and hides nothing."""
    try:
        for path in write_reports(out_dir, names, previous_of(out_dir, None)):
            print(f"class report: {path}")
    except Exception as error:
        print(f"warning: no class report ({type(error).__name__}: {error}); "
              f"try `python -m autograder report {out_dir}`", file=sys.stderr)


def run(args) -> int:
    out_dir = Path(args.out)
    names = options.graded_assignments(out_dir, args.assignment)
    if args.previous and not Path(args.previous).is_dir():
        print(f"error: --previous {args.previous} is not a folder", file=sys.stderr)
        return 2
    for path in write_reports(out_dir, names, previous_of(out_dir, args.previous), not args.no_similarity):
        print(f"class report: {path}")
    return 0


def register(commands) -> None:
    report = commands.add_parser("report", help="the class report of a grading run (HTML, one page per assignment)",
                                 description="Writes OUT/<assignment>/class-report.html: score distribution, checks "
                                             "hardest first with their commonest failure messages, what could not be "
                                             "graded and why, grading times, the regrade diff against a previous "
                                             "run and the most alike pairs of graded code. Opens offline.")
    report.add_argument("out", metavar="OUT", help="the --out folder of `grade`")
    options.add_assignment(report, "--assignment", help="only this assignment (default: every one graded in OUT)")
    report.add_argument("--previous", metavar="OLD_OUT",
                        help="an earlier run to diff against (default: OUT/.previous-run, which `grade` keeps "
                             "when it regrades)")
    report.add_argument("--no-similarity", action="store_true", help="leave out the comparison of the graded code")
    report.set_defaults(run=run)
