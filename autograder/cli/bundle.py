"""`bundle gradescope`: the grader packaged as a Gradescope autograder zip."""
from __future__ import annotations

from pathlib import Path

from autograder.cli import options


def run(args) -> int:
    from autograder.platforms import gradescope

    if args.feedback_limit:
        feedback_limit(args.feedback_limit)   # refused here, not in every student's run
    path = gradescope.bundle(Path(args.out), Path(args.course_dir), args.assignment, args.hidden_visibility,
                             args.feedback_limit)
    print(f"wrote {path}: upload it as the Gradescope autograder of {args.assignment} (it holds the hidden checks)")
    return 0


def feedback_limit(text: str):
    from autograder.platforms.gradescope import FeedbackLimit

    try:
        return FeedbackLimit(text)
    except ValueError as error:
        raise SystemExit(f"error: --feedback-limit: {error}") from None


def register(commands) -> None:
    bundle = commands.add_parser("bundle", help="package the grader for another grading engine")
    bundle.add_argument("engine", choices=("gradescope",))
    options.add_assignment(bundle, "--assignment", required=True,
                           help="the assignment this Gradescope autograder grades")
    bundle.add_argument("--out", default="autograder.zip", help="the zip to write (default autograder.zip)")
    options.add_course_dir(bundle, "requirements.lock")
    options.add_hidden_visibility(bundle, "after_due_date", "when students see the checks beyond the notebook's own "
                                                            "tests (default after_due_date: no answer oracle before the deadline)")
    bundle.add_argument("--feedback-limit", metavar="N/Hh",
                        help="full feedback at most N times per H hours, e.g. 3/24h (from Gradescope's metadata)")
    bundle.set_defaults(run=run)
