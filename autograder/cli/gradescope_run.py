"""`gradescope-run`: inside Gradescope's container, grade the upload and always leave a results.json."""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from autograder.cli import options
from autograder.cli.bundle import feedback_limit
from autograder.intake.discover import discover_upload
from autograder.reports import report
from autograder.sandbox import private_files

METADATA = "/autograder/submission_metadata.json"   # Gradescope's, beside the submission


def run(args) -> int:
    """Inside Gradescope: grade the upload's notebook; results.json is written whatever happens. What
    went wrong on the grader's side goes to stdout/stderr, which only instructors see."""
    from autograder.cli import main as grade_main
    from autograder.platforms import gradescope

    results = Path(args.results)
    try:
        upload = discover_upload(Path(args.submission_dir), args.assignment)
        if upload.notebook is None:
            outcome = {"assignment": upload.assignment, "checks": [], "error": upload.problem, "notes": upload.notes}
        else:
            # Earlier submissions' results (the metadata) and the upload are the platform's, not the student code's.
            private_files.add_private(Path(args.submission_dir), results.parent, Path(args.metadata or METADATA))
            with tempfile.TemporaryDirectory() as scratch:
                code = grade_main(["grade", str(upload.notebook), "--out", scratch, "--quiet", "--workers", "1",
                                   "--assignment", upload.assignment, *args.grade_options])
                found = list(Path(scratch).glob(f"*/*/{report.OUTCOME_FILE}"))
                if not found:
                    raise RuntimeError(f"grade exited with {code} and graded nothing (see the messages above)")
                outcome = json.loads(found[0].read_text())
            outcome["notes"] = upload.notes + outcome.get("notes", [])
        answer = gradescope.results(outcome, args.hidden_visibility, Path(args.metadata) if args.metadata else None,
                                    args.feedback_limit)
        report.write_atomically(results, json.dumps(answer, indent=2))
    except BaseException as error:  # Gradescope's advice: always leave a results.json behind
        message = str(error) if isinstance(error, SystemExit) and not isinstance(error.code, int) else (
            "The autograder could not grade this submission; your instructor has been told and will regrade it.")
        report.write_atomically(results, json.dumps({"score": 0, "output": message, "tests": []}))
        print(f"gradescope-run failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0


def register(commands) -> None:
    gradescope = commands.add_parser("gradescope-run", help="(inside Gradescope) grade /autograder/submission")
    gradescope.add_argument("--submission-dir", default="/autograder/submission")
    gradescope.add_argument("--results", default="/autograder/results/results.json")
    options.add_assignment(gradescope, "--assignment",
                               help="the assignment this autograder grades (default: from the notebook's name)")
    gradescope.add_argument("--metadata", help=f"Gradescope's submission metadata (for --feedback-limit; default {METADATA})")
    options.add_hidden_visibility(gradescope, "visible", "Gradescope visibility of the checks beyond the notebook's own tests")
    gradescope.add_argument("--feedback-limit", type=feedback_limit, metavar="N/Hh",
                            help="full feedback at most N times per H hours; later runs hide those checks")
    gradescope.add_argument("grade_options", nargs="*", help="extra options for grade, after --")
    gradescope.set_defaults(run=run)
