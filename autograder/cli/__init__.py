"""Command line: `python -m autograder release` and `python -m autograder grade PATH... --out DIR`."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from autograder import __version__, assignments
from autograder.sandbox import cpu_share
from autograder.pipeline import server as pipeline_server
from autograder.reports import report
from autograder.intake.discover import OUTPUT_MARKER, discover, discover_upload
from autograder.platforms.github_classroom import DETAILS
from autograder.sandbox.host import NO_SANDBOX_WARNING, Limits, NoConfinement, sandbox_mode
from autograder.pipeline.sd_pipeline import PipelineSpec
from autograder.intake.submission import SubmissionError, read_notebook_bytes
from autograder.grading.worker import GradingWorker, compute_environment

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def fingerprint(notebook: Path, options: list[str]) -> str:
    """What a result depends on: the submission's bytes, the grader's code and checks, the options."""
    digest = hashlib.sha256()
    try:
        digest.update(read_notebook_bytes(notebook))
    except SubmissionError as error:
        digest.update(str(error).encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + path.read_bytes())
    digest.update(json.dumps(options).encode())
    return digest.hexdigest()


def earlier_outcome(folder: Path, print_: str) -> dict | None:
    """The outcome a previous run stored in `folder`, if it is still valid."""
    try:
        stored = json.loads((folder / report.OUTCOME_FILE).read_text())
    except (OSError, ValueError):
        return None
    if stored.get("fingerprint") != print_ or stored.get("grader_failed"):
        return None
    return stored


def check_options(args) -> None:
    for name, least in (("workers", 1), ("timeout", 1), ("call_timeout", 1), ("cell_timeout", 1)):
        if getattr(args, name) < least:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be at least {least} "
                             f"(got {getattr(args, name):g})")


def command_grade(args) -> int:
    check_options(args)
    out_dir = Path(args.out)
    submissions = discover(args.paths, args.assignment, out_dir)
    if not submissions:
        print("no submissions found", file=sys.stderr)
        return 2
    requested = "none" if args.unsafe_no_sandbox else args.sandbox
    try:
        mode = sandbox_mode(requested)
    except NoConfinement as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if mode == "none":
        print(NO_SANDBOX_WARNING, file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    if mode == "uid":   # without namespaces, file permissions keep the submissions and reports from student code
        os.environ["AUTOGRADER_PRIVATE"] = os.pathsep.join(
            [str(out_dir), *(str(Path(p) if Path(p).is_dir() else Path(p).parent) for p in args.paths)])
    (out_dir / OUTPUT_MARKER).touch()
    from tqdm import tqdm

    options = ["--sandbox", mode, "--call-timeout", str(args.call_timeout),
               "--cell-timeout", str(args.cell_timeout), "--sd-model", args.sd_model,
               "--sd-device", args.sd_device] + (["--require-gpu"] if args.require_gpu else [])
    prints = {s.key: fingerprint(s.notebook, [s.assignment, *options]) for s in submissions if s.notebook}
    pending, kept = [], 0
    for submission in submissions:
        if submission.notebook is None:
            report.write_submission_reports(submission.report_dir(out_dir), submission.student, {
                "assignment": submission.assignment, "checks": [], "error": submission.problem,
                "notes": submission.notes})
        elif not args.force and earlier_outcome(submission.report_dir(out_dir), prints[submission.key]) is not None:
            kept += 1
        else:
            pending.append(submission)
    if kept:
        print(f"keeping {kept} results from an earlier run (--force regrades them)", file=sys.stderr)

    workers = queue.SimpleQueue()
    slots = max(1, min(args.workers, len(pending)))
    threads = max(1, (os.cpu_count() or 1) // slots)
    # Private to the grader's user (mkdtemp): the CPU share, and the pipeline server's socket.
    run_dir = tempfile.TemporaryDirectory(prefix="autograder-run-")
    share_file = Path(run_dir.name) / "threads"
    cpu_share.write(share_file, slots)
    server = None
    # With one worker there is nothing to share, and a second process with torch would cost ~170 MiB where
    # memory is tightest (Gradescope grades one submission per container).
    if slots > 1 and any(assignments.get(s.assignment).uses_pipeline for s in pending):
        server = pipeline_server.Server(Path(run_dir.name), PipelineSpec(args.sd_model, args.sd_device),
                                        args.require_gpu, compute_environment(threads, share_file),
                                        out_dir / ".pipeline-server.log" if args.keep_logs else None)
    for index in range(slots):
        workers.put(GradingWorker(out_dir / f".worker-{index}.log" if args.keep_logs else None, threads, share_file,
                                  server.environment if server else None))

    def grade_with_a_free_worker(submission) -> dict:
        worker = workers.get()
        try:
            return worker.grade(submission.notebook, submission.assignment, options, args.timeout)
        finally:
            workers.put(worker)

    failed, unfinished = [], len(pending)
    with ThreadPoolExecutor(max_workers=slots) as pool:
        futures = {pool.submit(grade_with_a_free_worker, s): s for s in pending}
        for future in tqdm(as_completed(futures), total=len(futures), desc="grading", unit="submission",
                           disable=args.quiet or None, file=sys.stderr):
            submission = futures[future]
            outcome = future.result()
            outcome.update(fingerprint=prints[submission.key], assignment=submission.assignment,
                           notes=submission.notes + outcome.get("notes", []))
            report.write_submission_reports(submission.report_dir(out_dir), submission.student, outcome)
            if outcome.get("grader_failed"):
                failed.append((submission, outcome))
            unfinished -= 1
            if unfinished < slots:   # a worker fell idle: lend its CPUs to those still grading
                cpu_share.write(share_file, unfinished)
        idle = [workers.get() for _ in range(slots)]
        list(pool.map(GradingWorker.close, idle))   # at once: each takes a moment to end its sandboxes
    if server:
        server.close()
    run_dir.cleanup()
    for name in sorted({s.assignment for s in submissions}):
        outcomes = report.stored_outcomes(out_dir / name)
        report.write_atomically(out_dir / name / "grades.csv", report.grades_csv(outcomes, assignments.get(name)))
        print(f"\n{assignments.get(name).title} ({name}): {out_dir / name / 'grades.csv'}")
        print(report.score_table(outcomes, assignments.get(name)))
    for submission, outcome in failed:
        print(f"grader error on {submission.assignment}/{submission.student}:\n{outcome.get('grader_log', '')}",
              file=sys.stderr)
    print(f"\n{len(submissions)} submissions graded into {out_dir} (sandbox: {mode})"
          + (f"; grader errors on: {', '.join(s.student for s, _ in failed)}" if failed else ""))
    return 2 if failed else 0


def command_bundle(args) -> int:
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


def command_gradescope_run(args) -> int:
    """Inside Gradescope: grade the upload's notebook; results.json is written whatever happens. What
    went wrong on the grader's side goes to stdout/stderr, which only instructors see."""
    from autograder.platforms import gradescope

    results = Path(args.results)
    try:
        upload = discover_upload(Path(args.submission_dir), args.assignment)
        if upload.notebook is None:
            outcome = {"assignment": upload.assignment, "checks": [], "error": upload.problem, "notes": upload.notes}
        else:
            with tempfile.TemporaryDirectory() as scratch:
                code = main(["grade", str(upload.notebook), "--out", scratch, "--quiet", "--workers", "1",
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


def command_classroom_template(args) -> int:
    from autograder.platforms import github_classroom

    out = github_classroom.template(args.assignment, Path(args.out), Path(args.course_dir))
    print(f"wrote {out}: push it as the template repository of the Classroom assignment (it holds no hidden check)")
    return 0


def command_classroom_payloads(args) -> int:
    from autograder.platforms import github_classroom

    count, unchanged = github_classroom.payloads(Path(args.graded), args.assignment, Path(args.clones), args.prefix,
                                                 Path(args.outbox), args.details)
    print(f"{count} results to send ({Path(args.outbox) / 'manifest.tsv'}), {unchanged} unchanged since sent")
    return 0


def command_nbgrader_sync(args) -> int:
    from autograder.platforms.nbgrader_gradebook import sync

    results = sync(Path(args.course_dir), args.assignment, Path(args.graded), args.student or None)
    for result in results:
        print(f"{'synced ' if result.ok else 'SKIPPED'} {result.student}"
              + (f": {result.message}" if result.message else ""))
    failed = [r for r in results if not r.ok and not r.skipped]
    print(f"{sum(r.ok for r in results)} of {len(results)} graded submissions written to the gradebook of {args.course_dir}")
    return 2 if failed or not results else 0


def command_release(args) -> int:
    from autograder.release.nbgrader_release import check, release

    if args.check:
        return check(Path(args.course_dir), args.assignments)
    release(Path(args.course_dir), args.assignments, solutions=not args.no_solutions)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade submitted notebooks with the hidden checks",
                                description="Grade notebooks in sandboxes and write results.json (Gradescope), "
                                            "feedback.md per submission and grades.csv.")
    grade.add_argument("paths", nargs="+", metavar="PATH",
                       help="a notebook, a folder of notebooks, or an nbgrader submitted/ folder")
    grade.add_argument("--out", required=True, metavar="DIR",
                       help="where to write the reports: DIR/<assignment>/<student>/ and DIR/<assignment>/grades.csv")
    grade.add_argument("--assignment", choices=sorted(assignments.ASSIGNMENTS),
                       help="grade only this assignment (default: from nbgrader's submitted/<student>/<assignment>/ "
                            "folders, else from the notebooks' names)")
    grade.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1),
                       help="submissions graded at once (default: CPU count)")
    grade.add_argument("--sandbox", choices=("auto", "bwrap", "uid"), default="auto",
                       help="auto: bubblewrap where it can create namespaces, else (as root) a user of its own per "
                            "sandbox with a syscall filter (uid); with neither, grading is refused")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run student code unconfined (it can read the grader's files and use the network): "
                            "only for code you trust")
    grade.add_argument("--require-gpu", action="store_true",
                       help="a GPU check that cannot run is a grader error instead of 'not run'")
    grade.add_argument("--timeout", type=float, default=1800, help="seconds allowed per submission")
    grade.add_argument("--call-timeout", type=float, default=30.0,
                       help="seconds one call of a student's function may take (default 30)")
    grade.add_argument("--cell-timeout", type=float, default=Limits.cell_seconds,
                       help=f"seconds one cell may take when the notebook is run for grading; a slower cell is "
                            f"left out (default {Limits.cell_seconds:g})")
    default_pipeline = PipelineSpec.from_environment()
    grade.add_argument("--sd-model", default=default_pipeline.model,
                       metavar="ID_OR_DIR", help="Exercise 4's pipeline: hub id or local folder (default bk-sdm-small)")
    grade.add_argument("--sd-device", choices=("cuda", "cpu"), default=default_pipeline.device,
                       help="where Exercise 4's pipeline runs; with cuda and no GPU its checks are 'not run'")
    grade.add_argument("--force", action="store_true",
                       help="regrade everything; by default results already in DIR for unchanged submissions are kept")
    grade.add_argument("--keep-logs", action="store_true", help="keep each worker's pytest log in DIR")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.set_defaults(run=command_grade)

    release = commands.add_parser("release", help="regenerate release/ and solutions/ from exercises/ with nbgrader")
    release.add_argument("assignments", nargs="*", help="assignment ids (default: every folder in exercises/)")
    release.add_argument("--course-dir", default=str(PACKAGE_DIR.parent), help="folder holding nbgrader_config.py")
    release.add_argument("--no-solutions", action="store_true", help="only the student version")
    release.add_argument("--check", action="store_true",
                         help="change nothing: regenerate in a scratch folder and fail if the committed ones differ")
    release.set_defaults(run=command_release)

    sync = commands.add_parser("nbgrader-sync", help="write hidden-check scores into an nbgrader course's gradebook",
                               description="Runs nbgrader autograde without executing student code, filling each "
                                           "hidden-check slot cell with the scores that `grade` stored in --graded.")
    sync.add_argument("assignment", choices=sorted(assignments.ASSIGNMENTS))
    sync.add_argument("--graded", required=True, metavar="DIR", help="the --out folder of `grade`")
    sync.add_argument("--course-dir", default=".", help="the nbgrader course folder (holding nbgrader_config.py)")
    sync.add_argument("--student", action="append", help="only this student (repeatable)")
    sync.set_defaults(run=command_nbgrader_sync)

    bundle = commands.add_parser("bundle", help="package the grader for another grading engine")
    bundle.add_argument("engine", choices=("gradescope",))
    bundle.add_argument("--assignment", required=True, choices=sorted(assignments.ASSIGNMENTS),
                        help="the assignment this Gradescope autograder grades")
    bundle.add_argument("--out", default="autograder.zip", help="the zip to write (default autograder.zip)")
    bundle.add_argument("--course-dir", default=str(PACKAGE_DIR.parent), help="folder holding requirements.lock")
    bundle.add_argument("--hidden-visibility", choices=report.VISIBILITIES, default="after_due_date",
                        help="when students see the checks beyond the notebook's own tests (default after_due_date: "
                             "no answer oracle before the deadline)")
    bundle.add_argument("--feedback-limit", metavar="N/Hh",
                        help="full feedback at most N times per H hours, e.g. 3/24h (from Gradescope's metadata)")
    bundle.set_defaults(run=command_bundle)

    gradescope = commands.add_parser("gradescope-run", help="(inside Gradescope) grade /autograder/submission")
    gradescope.add_argument("--submission-dir", default="/autograder/submission")
    gradescope.add_argument("--results", default="/autograder/results/results.json")
    gradescope.add_argument("--assignment", choices=sorted(assignments.ASSIGNMENTS),
                            help="the assignment this autograder grades (default: from the notebook's name)")
    gradescope.add_argument("--metadata", help="Gradescope's submission_metadata.json (for --feedback-limit)")
    gradescope.add_argument("--hidden-visibility", choices=report.VISIBILITIES, default="visible",
                            help="Gradescope visibility of the checks beyond the notebook's own tests")
    gradescope.add_argument("--feedback-limit", type=feedback_limit, metavar="N/Hh",
                            help="full feedback at most N times per H hours; later runs hide those checks")
    gradescope.add_argument("grade_options", nargs="*", help="extra options for grade, after --")
    gradescope.set_defaults(run=command_gradescope_run)

    template = commands.add_parser("classroom-template", help="write a GitHub Classroom template repository",
                                   description="The students' starting repository: the released notebook, the "
                                               "pinned requirements, and a workflow that runs the visible tests and "
                                               "reports their points (no hidden check, no token).")
    template.add_argument("assignment", choices=sorted(assignments.ASSIGNMENTS))
    template.add_argument("--out", required=True, metavar="DIR")
    template.add_argument("--course-dir", default=str(PACKAGE_DIR.parent), help="folder holding requirements.lock")
    template.set_defaults(run=command_classroom_template)

    payloads = commands.add_parser("classroom-payloads", help="(in the grader's workflow) results to send to students",
                                   description="For each cloned student repository whose graded result changed, "
                                               "a repository_dispatch body holding the reporter's JSON.")
    payloads.add_argument("graded", metavar="DIR", help="the --out folder of `grade`")
    payloads.add_argument("--assignment", required=True, choices=sorted(assignments.ASSIGNMENTS))
    payloads.add_argument("--clones", required=True, metavar="DIR", help="one clone per student, named by login")
    payloads.add_argument("--prefix", default="", help="Classroom's repository prefix (repository = prefix + login)")
    payloads.add_argument("--outbox", required=True, metavar="DIR")
    payloads.add_argument("--details", choices=DETAILS, default="totals",
                          help="totals (default): hidden checks as one total per graded function; visible: each "
                               "check's name and message (an answer oracle before the deadline)")
    payloads.set_defaults(run=command_classroom_payloads)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
