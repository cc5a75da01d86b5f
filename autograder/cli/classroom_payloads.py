"""`classroom-payloads`: in the instructor's grader workflow, the results to send back to students' repositories."""
from __future__ import annotations

from pathlib import Path

from autograder.cli import options
from autograder.cli.diff import add_requirement, refuse_unacknowledged
from autograder.platforms.github_classroom import DETAILS


def run(args) -> int:
    from autograder.platforms import github_classroom

    refuse_unacknowledged(args, Path(args.graded))
    count, unchanged = github_classroom.payloads(Path(args.graded), args.assignment, Path(args.clones), args.prefix,
                                                 Path(args.outbox), args.details)
    print(f"{count} results to send ({Path(args.outbox) / 'manifest.tsv'}), {unchanged} unchanged since sent")
    return 0


def register(commands) -> None:
    payloads = commands.add_parser("classroom-payloads", help="(in the grader's workflow) results to send to students",
                                   description="For each cloned student repository whose graded result changed, "
                                               "a repository_dispatch body holding the reporter's JSON.")
    payloads.add_argument("graded", metavar="DIR", help="the --out folder of `grade`")
    options.add_assignment(payloads, "--assignment", required=True)
    payloads.add_argument("--clones", required=True, metavar="DIR", help="one clone per student, named by login")
    payloads.add_argument("--prefix", default="", help="Classroom's repository prefix (repository = prefix + login)")
    payloads.add_argument("--outbox", required=True, metavar="DIR")
    payloads.add_argument("--details", choices=DETAILS, default="totals",
                          help="totals (default): hidden checks as one total per graded function; visible: each "
                               "check's name and message (an answer oracle before the deadline)")
    add_requirement(payloads)
    payloads.set_defaults(run=run)
