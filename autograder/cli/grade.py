"""`grade`: every submission through a worker's sandbox, then each one's reports, the class's grades.csv and its
class report (report.py); a regrade first keeps the outcomes it replaces (OUT/.previous-run) for the report's diff."""
from __future__ import annotations

import hashlib
import json
import queue
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from autograder import assignments
from autograder.cli import options
from autograder.cli.options import PACKAGE_DIR
from autograder.cli.report import class_reports_after
from autograder.grading import template
from autograder.grading.worker import GradingWorker, compute_environment
from autograder.intake.discover import OUTPUT_MARKER, discover
from autograder.intake.submission import SubmissionError, read_notebook_bytes
from autograder.pipeline import lanes, server as pipeline_server
from autograder.pipeline.spec import PipelineSpec, device_argument
from autograder.reports import class_report, grader_errors, regrade_diff, report, shards, similarity
from autograder.sandbox import cpu_share, private_files, start_slots
from autograder.sandbox.limits import Limits
from autograder.sandbox.modes import NO_SANDBOX_WARNING, NoConfinement, sandbox_mode


def grader_fingerprint(options: list[str]) -> dict:
    """What every result depends on besides the submission: the grader's code and checks, the options."""
    code = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        code.update(str(path.relative_to(PACKAGE_DIR)).encode() + path.read_bytes())
    return {"code": code.hexdigest(), "options": options}


def fingerprint(notebook: Path, assignment: str, grader: dict) -> str:
    """What a result depends on: the submission's bytes, its assignment, the grader."""
    digest = hashlib.sha256()
    try:
        digest.update(read_notebook_bytes(notebook))
    except SubmissionError as error:
        digest.update(str(error).encode())
    digest.update(json.dumps([assignment, grader]).encode())
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


def progress(items, total: int, quiet: bool):
    """A bar on a terminal; without one (a CI log), a plain line every twentieth of the class."""
    if quiet:
        return items
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(items, total=total, desc="grading", unit="submission", file=sys.stderr)

    def lines():
        step = max(1, total // 20)
        for count, item in enumerate(items, 1):
            yield item
            if count % step == 0 or count == total:
                print(f"graded {count}/{total}", file=sys.stderr, flush=True)
    return lines()


def run(args) -> int:
    options.at_least(args, workers=1, timeout=1, call_timeout=1, cell_timeout=1)
    shard = shards.parse(args.shard) if args.shard else None
    out_dir = Path(args.out)
    submissions = discover(args.paths, args.assignment, out_dir)
    if not submissions:
        print("no submissions found", file=sys.stderr)
        return 2
    every = [s.key for s in submissions]
    shards.refuse_another(out_dir, shard)
    if shard:
        submissions = [s for s in submissions if shards.owner(s.key, shard[1]) == shard[0]]
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
        private_files.add_private(out_dir, *(Path(p) if Path(p).is_dir() else Path(p).parent for p in args.paths))
    (out_dir / OUTPUT_MARKER).touch()
    worker_options = ["--sandbox", mode, "--call-timeout", str(args.call_timeout),
                      "--cell-timeout", str(args.cell_timeout), "--sd-model", args.sd_model,
                      "--sd-device", args.sd_device] + (["--require-gpu"] if args.require_gpu else [])
    grader = grader_fingerprint(worker_options)   # which GPU a shard uses changes no result: not in it
    pipeline = PipelineSpec(args.sd_model, args.sd_device)
    if shard:
        pipeline = pipeline.for_shard(shard[0])
        worker_options[worker_options.index("--sd-device") + 1] = pipeline.device
    if shard:
        shards.write(out_dir, shard, [s.key for s in submissions], every, grader,
                     {"hidden_visibility": args.hidden_visibility})
        if not submissions:
            print(f"shard {'%d/%d' % shard}: none of the class's {len(every)} submissions falls in it")
            return 0
    prints = {s.key: fingerprint(s.notebook, s.assignment, grader) for s in submissions if s.notebook}
    pending, kept, unreadable = [], 0, []
    for submission in submissions:
        if submission.notebook is None:
            unreadable.append(submission)
        elif not args.force and (stored := earlier_outcome(submission.report_dir(out_dir), prints[submission.key])):
            kept += 1   # its outcome stays as it is; what its student sees follows this run's visibility
            report.write_student_reports(submission.report_dir(out_dir), submission.student, stored,
                                         args.hidden_visibility)
        else:
            pending.append(submission)
    if any((s.report_dir(out_dir) / report.OUTCOME_FILE).exists() for s in pending):   # a regrade: keep what it replaces
        regrade_diff.keep_previous(out_dir, sorted({s.assignment for s in submissions}))
    for submission in unreadable:
        report.write_submission_reports(submission.report_dir(out_dir), submission.student, {
            "assignment": submission.assignment, "checks": [], "error": submission.problem,
            "notes": submission.notes}, args.hidden_visibility)
    if kept:
        print(f"keeping {kept} results from an earlier run (--force regrades them)", file=sys.stderr)

    if pending:
        class_report.warm_up()
    workers = queue.SimpleQueue()
    slots = max(1, min(args.workers, len(pending)))
    threads = max(1, cpu_share.available() // slots)
    # Private to the grader's user (mkdtemp): the CPU share, and the pipeline server's socket.
    run_dir = tempfile.TemporaryDirectory(prefix="autograder-run-", dir=template.socket_folder())
    share_file = Path(run_dir.name) / "threads"
    cpu_share.write(share_file, slots)
    server, preload, shared = None, None, {}
    # With one worker there is nothing to share, and a second process with torch would cost ~170 MiB where
    # memory is tightest (Gradescope grades one submission per container): the worker loads it as it starts.
    if any(assignments.get(s.assignment).uses_pipeline for s in pending):
        preload = (pipeline.model, pipeline.device, args.require_gpu)
    if slots > 1:   # sandboxes that start at once share the CPUs with the pipeline server's load
        shared = start_slots.prepare(Path(run_dir.name) / "start-slots", cpu_share.available(), bool(preload))
    if slots > 1 and preload:
        server = pipeline_server.Server(Path(run_dir.name), pipeline, args.require_gpu,
                                        {**compute_environment(threads, share_file), **shared, lanes.LANES: str(slots),
                                         "TMPDIR": run_dir.name},   # what torch leaves there goes with the run
                                        out_dir / ".pipeline-server.log" if args.keep_logs else None,
                                        reference_calls=[call for name in sorted({s.assignment for s in pending})
                                                         for call in assignments.get(name).reference_calls])
        start_slots.loading_in(Path(run_dir.name) / "start-slots", server.process.pid)
        shared = {**shared, **server.environment}
    every_worker = [GradingWorker(out_dir / f".worker-{index}.log" if args.keep_logs else None, threads, share_file,
                                  shared, None if server else preload)
                    for index in range(slots)]
    for worker in every_worker:
        workers.put(worker)

    def grade_with_a_free_worker(submission) -> dict:
        worker = workers.get()
        try:
            return worker.grade(submission.notebook, submission.assignment, worker_options, args.timeout)
        finally:
            workers.put(worker)

    failed, unfinished, done = [], len(pending), 0
    similarity_ahead = class_report.SimilarityAhead()
    try:
        with ThreadPoolExecutor(max_workers=slots) as pool:
            futures = {pool.submit(grade_with_a_free_worker, s): s for s in pending}
            try:
                for future in progress(as_completed(futures), len(futures), args.quiet):
                    submission = futures[future]
                    outcome = future.result()
                    outcome.update(fingerprint=prints[submission.key], assignment=submission.assignment,
                                   notes=submission.notes + outcome.get("notes", []))
                    report.write_submission_reports(submission.report_dir(out_dir), submission.student, outcome,
                                                    args.hidden_visibility)
                    try:
                        similarity_ahead.add(outcome, assignments.get(submission.assignment))
                    except Exception:   # the class report meets the same problem and says so
                        pass
                    if outcome.get("grader_failed"):
                        failed.append((submission, outcome))
                    unfinished, done = unfinished - 1, done + 1
                    if unfinished < slots:   # a worker fell idle: lend its CPUs to those still grading
                        cpu_share.write(share_file, unfinished)
            except KeyboardInterrupt:   # stop at once: what is stored stays, the rest is graded by the next run
                for future in futures:
                    future.cancel()
                for worker in every_worker:
                    worker.close(wait=0)
                raise
            idle = [workers.get() for _ in range(slots)]
            list(pool.map(GradingWorker.close, idle))   # at once: each takes a moment to end its sandboxes
    except KeyboardInterrupt:
        print(f"\ninterrupted: {done} of {len(pending)} submissions graded in this run; run the same command "
              "again to grade the rest", file=sys.stderr)
        return 130
    finally:
        if server:
            server.close()
        run_dir.cleanup()
    print(report.write_class(out_dir, {s.assignment for s in submissions}))
    # What the instructor must act on is written before the report, which may take a while on a large class.
    log = grader_errors.write(out_dir, [(f"{s.assignment}/{s.student}", outcome) for s, outcome in failed])
    class_reports_after(out_dir, sorted({s.assignment for s in submissions}))
    similarity.forget()
    of_class = f"shard {'%d/%d' % shard} of {len(every)}; " if shard else ""
    print(f"\n{len(submissions)} submissions graded into {out_dir} ({of_class}sandbox: {mode})")
    if log:
        print(f"grader errors on {len(failed)} submissions, not graded: "
              f"{', '.join(f'{s.assignment}/{s.student}' for s, _ in failed)}; why: {log} "
              "(run the same command again to regrade just these)", file=sys.stderr)
    return 2 if failed else 0


def register(commands) -> None:
    grade = commands.add_parser("grade", help="grade submitted notebooks with the hidden checks",
                                description="Grade notebooks in sandboxes and write results.json (Gradescope), "
                                            "feedback.md per submission and grades.csv.")
    grade.add_argument("paths", nargs="+", metavar="PATH",
                       help="a notebook, a folder of notebooks, or an nbgrader submitted/ folder")
    grade.add_argument("--out", required=True, metavar="DIR",
                       help="where to write the reports: DIR/<assignment>/<student>/ and DIR/<assignment>/grades.csv")
    options.add_assignment(grade, "--assignment",
                           help="grade only this assignment (default: from nbgrader's submitted/<student>/<assignment>/ "
                            "folders, else from the notebooks' names)")
    grade.add_argument("--workers", type=int, default=cpu_share.available(),
                       help="submissions graded at once (default: the CPUs it may use)")
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
    grade.add_argument("--sd-device", type=device_argument, default=default_pipeline.device, metavar="cpu|cuda|cuda:N",
                       help="where Exercise 4's pipeline runs; with cuda and no GPU its checks are 'not run'; with "
                            "--shard I/N on a machine with G GPUs, cuda means GPU I mod G (one pipeline per GPU)")
    grade.add_argument("--force", action="store_true",
                       help="regrade everything; by default results already in DIR for unchanged submissions are kept")
    options.add_hidden_visibility(grade, "visible", "which checks feedback.md and results.json detail: hidden, "
                                                    "after_due_date or after_published detail only those the notebook's own tests ask")
    grade.add_argument("--shard", metavar="I/N",
                       help="grade only shard I of N (I from 0 to N-1), a fixed slice of the class chosen by a hash of "
                            "each assignment and student; `merge` assembles the shards' folders (see docs/sharding.md)")
    grade.add_argument("--keep-logs", action="store_true", help="keep each worker's pytest log in DIR")
    grade.add_argument("--quiet", action="store_true", help="no progress bar")
    grade.set_defaults(run=run)
