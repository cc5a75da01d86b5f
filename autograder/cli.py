"""Command line: `python -m autograder release` and `python -m autograder grade PATH... --out DIR`."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import report
from .sandbox import NO_SANDBOX_WARNING, sandbox_mode
from .sd_pipeline import PipelineSpec
from .worker import GradingWorker

PACKAGE_DIR = Path(__file__).resolve().parent


def discover(paths: list[str]) -> list[tuple[str, Path]]:
    """(submission id, notebook) pairs. In a folder, the first folder level is the student id
    (nbgrader's submitted/<student>/<assignment>/<notebook>.ipynb); loose notebooks use their file name."""
    found: list[tuple[str, Path]] = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            found.append((path.stem, path))
        elif path.is_dir():
            for notebook in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in notebook.parts or not notebook.is_file():
                    continue
                relative = notebook.relative_to(path)
                found.append((relative.parts[0] if len(relative.parts) > 1 else notebook.stem, notebook))
            # A student folder without any notebook is still a submission: it gets zero and says why.
            for student in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if not any(student.rglob("*.ipynb")):
                    files = sorted(f for f in student.rglob("*") if f.is_file())
                    if files:
                        found.append((student.name, files[0]))
        else:
            raise SystemExit(f"error: no such file or folder: {given}")
    unique: dict[str, Path] = {}
    for submission_id, notebook in found:
        key = re.sub(r"[^A-Za-z0-9._-]", "_", submission_id).lstrip(".") or "submission"
        if key in unique:
            key = f"{key}-{re.sub(r'[^A-Za-z0-9._-]', '_', notebook.stem)}"
        while key in unique:
            key += "_"
        unique[key] = notebook
    return list(unique.items())


def fingerprint(notebook: Path, options: list[str]) -> str:
    """What a result depends on: the submission's bytes, the grader's code and checks, the options."""
    digest = hashlib.sha256()
    try:
        digest.update(notebook.read_bytes())
    except OSError as error:
        digest.update(repr(error).encode())
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + path.read_bytes())
    digest.update(json.dumps(options).encode())
    return digest.hexdigest()


def earlier_outcome(out_dir: Path, submission_id: str, print_: str) -> dict | None:
    """The outcome a previous run stored for this submission, if it is still valid."""
    try:
        stored = json.loads((out_dir / submission_id / report.OUTCOME_FILE).read_text())
    except (OSError, ValueError):
        return None
    if stored.get("fingerprint") != print_ or stored.get("grader_failed"):
        return None
    return stored


def command_grade(args) -> int:
    submissions = discover(args.paths)
    if not submissions:
        print("no notebooks found", file=sys.stderr)
        return 2
    mode = sandbox_mode(args.sandbox)
    if mode == "none":
        print(NO_SANDBOX_WARNING, file=sys.stderr)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, dict] = {}
    from tqdm import tqdm

    options = ["--sandbox", args.sandbox, "--call-timeout", str(args.call_timeout), "--sd-model", args.sd_model,
               "--sd-device", args.sd_device] + (["--require-gpu"] if args.require_gpu else [])
    prints = {submission_id: fingerprint(notebook, options) for submission_id, notebook in submissions}
    if not args.force:
        for submission_id, _ in submissions:
            kept = earlier_outcome(out_dir, submission_id, prints[submission_id])
            if kept is not None:
                outcomes[submission_id] = kept
        if outcomes:
            print(f"keeping {len(outcomes)} results from an earlier run (--force regrades them)", file=sys.stderr)
    pending = [(s, n) for s, n in submissions if s not in outcomes]

    workers = queue.SimpleQueue()
    slots = max(1, min(args.workers, len(pending)))
    threads = max(1, (os.cpu_count() or 1) // slots)
    for index in range(slots):
        workers.put(GradingWorker(out_dir / f".worker-{index}.log" if args.keep_logs else None, threads))

    def grade_with_a_free_worker(notebook: Path) -> dict:
        worker = workers.get()
        try:
            return worker.grade(notebook, options, args.timeout)
        finally:
            workers.put(worker)

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = {pool.submit(grade_with_a_free_worker, notebook): submission_id
                   for submission_id, notebook in pending}
        for future in tqdm(as_completed(futures), total=len(futures), desc="grading", unit="submission",
                           disable=args.quiet or None, file=sys.stderr):
            submission_id = futures[future]
            outcome = future.result()
            outcome["fingerprint"] = prints[submission_id]
            outcomes[submission_id] = outcome
            report.write_submission_reports(out_dir, submission_id, outcome)
    while not workers.empty():
        workers.get().close()
    report.write_atomically(out_dir / "grades.csv", report.grades_csv(outcomes))
    print(report.score_table(outcomes))
    failed = sorted(s for s, o in outcomes.items() if o.get("grader_failed"))
    for submission_id in failed:
        print(f"grader error on {submission_id}:\n{outcomes[submission_id].get('grader_log', '')}", file=sys.stderr)
    print(f"\n{len(outcomes)} submissions graded into {out_dir} (sandbox: {mode})"
          + (f"; grader errors on: {', '.join(failed)}" if failed else ""))
    return 2 if failed else 0


def command_bundle(args) -> int:
    from .bundle import gradescope_bundle

    path = gradescope_bundle(Path(args.out), Path(args.course_dir))
    print(f"wrote {path}: upload it as the Gradescope autograder (it holds the hidden checks)")
    return 0


def command_gradescope_run(args) -> int:
    """Inside Gradescope: grade the one submitted notebook; results.json is written whatever happens."""
    results = Path(args.results)
    try:
        notebooks = sorted(Path(args.submission_dir).glob("*.ipynb"))
        if not notebooks:
            outcome = {"checks": [], "error": "No .ipynb file was submitted: upload your notebook."}
        else:
            with tempfile.TemporaryDirectory() as scratch:
                grade_args = [str(notebooks[0]), "--out", scratch, "--quiet", "--workers", "1"]
                main(["grade", *grade_args, *args.grade_options])
                outcome = json.loads(next(Path(scratch).glob(f"*/{report.OUTCOME_FILE}")).read_text())
            if len(notebooks) > 1:
                outcome["error"] = f"Several notebooks were submitted; graded {notebooks[0].name}."
        report.write_atomically(results, json.dumps(report.gradescope_results(outcome), indent=2))
    except Exception as error:  # Gradescope's advice: always leave a results.json behind
        report.write_atomically(results, json.dumps({
            "score": 0, "output": f"The autograder failed ({type(error).__name__}); your instructor will regrade.",
            "tests": []}))
        raise
    return 0


def command_release(args) -> int:
    from .release import release

    release(Path(args.course_dir), args.assignments, solutions=not args.no_solutions)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade submitted notebooks with the hidden checks",
                                description="Grade notebooks in sandboxes and write results.json (Gradescope), "
                                            "feedback.md per submission and grades.csv.")
    grade.add_argument("paths", nargs="+", metavar="PATH",
                       help="a notebook, a folder of notebooks, or an nbgrader submitted/ folder")
    grade.add_argument("--out", required=True, metavar="DIR", help="where to write the reports")
    grade.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1),
                       help="submissions graded at once (default: CPU count)")
    grade.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                       help="auto: bubblewrap when usable, else unconfined with a warning; bwrap: required")
    grade.add_argument("--require-gpu", action="store_true",
                       help="a GPU check that cannot run is a grader error instead of 'not run'")
    grade.add_argument("--timeout", type=float, default=1800, help="seconds allowed per submission")
    grade.add_argument("--call-timeout", type=float, default=30.0,
                       help="seconds one call of a student's function may take (default 30)")
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
    release.set_defaults(run=command_release)

    bundle = commands.add_parser("bundle", help="package the grader for another grading engine")
    bundle.add_argument("engine", choices=("gradescope",))
    bundle.add_argument("--out", default="autograder.zip", help="the zip to write (default autograder.zip)")
    bundle.add_argument("--course-dir", default=str(PACKAGE_DIR.parent), help="folder holding requirements.lock")
    bundle.set_defaults(run=command_bundle)

    gradescope = commands.add_parser("gradescope-run", help="(inside Gradescope) grade /autograder/submission")
    gradescope.add_argument("--submission-dir", default="/autograder/submission")
    gradescope.add_argument("--results", default="/autograder/results/results.json")
    gradescope.add_argument("grade_options", nargs="*", help="extra options for grade, after --")
    gradescope.set_defaults(run=command_gradescope_run)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
