"""`classroom-template`: the students' starting repository for GitHub Classroom (no hidden check in it)."""
from __future__ import annotations

from pathlib import Path

from autograder.cli import options


def run(args) -> int:
    from autograder.platforms import github_classroom

    out = github_classroom.template(args.assignment, Path(args.out), Path(args.course_dir))
    print(f"wrote {out}: push it as the template repository of the Classroom assignment (it holds no hidden check)")
    return 0


def register(commands) -> None:
    template = commands.add_parser("classroom-template", help="write a GitHub Classroom template repository",
                                   description="The students' starting repository: the released notebook, the "
                                               "pinned requirements, and a workflow that runs the visible tests and "
                                               "reports their points (no hidden check, no token).")
    options.add_assignment(template)
    template.add_argument("--out", required=True, metavar="DIR")
    options.add_course_dir(template, "requirements.lock")
    template.set_defaults(run=run)
