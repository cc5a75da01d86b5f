"""How long the class report (with its regrade diff and similarity pass) and the diff take on a class of 500 (not a test).

Builds 500 Lesson 1 notebooks from the similarity corpus's correct styles (tests/similarity_corpus.py, some
planted copies among them), and two grading runs' outputs for them, written by the grader's own writer
(report.write_submission_reports) with the assignment's real check names and points: a first run, and a
regrade in which a few students moved. Then times, each in a fresh process as an instructor runs them:

    python -m autograder report NEW --previous OLD     (figures, item analysis, diff, similarity of all pairs)
    python -m autograder diff OLD NEW

and prints the wall time and the peak memory of each; then what one similarity fingerprint of distinct code
costs, which the grade command pays as each outcome arrives (class_report.SimilarityAhead), not at its end.

    python benchmarks/class_report.py [--size 500]
"""
from __future__ import annotations

import argparse
import ast
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import assignments  # noqa: E402
from autograder.intake.graded_code import graded_code, stub_and_solution  # noqa: E402
from autograder.reports import report, similarity  # noqa: E402
from tests.similarity_corpus import disguised, independent_students, styles, variant_of  # noqa: E402
from tests.submissions import ASSIGNMENT, build  # noqa: E402

MESSAGES = ["rows of the attention weights do not sum to 1: apply the softmax over the text-token axis",
            "at guidance_scale=7.5 the result is not noise_uncond + w * (noise_cond - noise_uncond)",
            "your code took longer than 5 s while running it (an endless loop, or far too much work?)",
            "the images differ from the pipeline's own at the same seed"]


def declared_checks(assignment: assignments.Assignment) -> list[tuple[str, float]]:
    """(name, points) of every @check in the assignment's checks folder, as the grader reports them."""
    found = []
    for path in sorted(assignment.checks_dir.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check" and node.args:
                points = next((k.value.value for k in node.keywords if k.arg == "points"), None)
                points = points if points is not None else node.args[1].value
                found.append((node.args[0].value, float(points)))
    return found


def outcome(checks, notebook: Path, rng: random.Random, moved: bool = False) -> dict:
    skill = rng.random()
    entries = []
    for index, (name, points) in enumerate(checks):
        passed = rng.random() < 0.4 + 0.6 * skill
        if moved and index == 0:
            passed = not passed
        entries.append({"name": name, "max_score": points, "score": points if passed else 0.0,
                        "outcome": "passed" if passed else "failed", "message": "" if passed else rng.choice(MESSAGES),
                        "visible": index % 2 == 0})
    return {"checks": entries, "assignment": ASSIGNMENT, "sandbox": "bwrap", "submission": str(notebook),
            "notebook_error": None, "skipped_cells": [], "execution_time": round(rng.uniform(0.5, 30.0), 3),
            "grader_failed": False, "fingerprint": f"{rng.getrandbits(64):016x}", "notes": []}


def write_class(folder: Path, size: int) -> tuple[Path, Path, int]:
    assignment = assignments.get(ASSIGNMENT)
    checks = declared_checks(assignment)
    combinations = independent_students(len(styles()["apply_cfg"]) * 40, seed=1) or [{}]
    planted = size // 50
    old, new = folder / "old", folder / "new"
    rng = random.Random(0)
    moved = 0
    for index in range(size):
        student = f"s{index:03d}"
        if index < planted:
            variant = disguised(combinations[index], seed=index)
        else:
            variant = variant_of(combinations[index % len(combinations)])
        notebook = build(variant, folder / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
        state = rng.getstate()
        report.write_submission_reports(old / ASSIGNMENT / student, student, outcome(checks, notebook, rng))
        rng.setstate(state)
        changes = index % 20 == 7
        moved += changes
        report.write_submission_reports(new / ASSIGNMENT / student, student, outcome(checks, notebook, rng, changes))
    return old, new, moved


def timed(*arguments: str) -> tuple[float, float, str]:
    """Wall seconds and peak memory (MiB) of `python -m autograder ARGUMENTS` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "autograder", *arguments], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024, run.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.monotonic()
        old, new, moved = write_class(Path(scratch), args.size)
        print(f"built a class of {args.size} notebooks and two runs' outputs in {time.monotonic() - started:.0f} s")
        seconds, peak, _ = timed("report", str(new), "--previous", str(old))
        print(f"report (figures, item analysis, diff, similarity of {args.size * (args.size - 1) // 2} pairs): "
              f"{seconds:.1f} s, peak memory {peak:.0f} MiB")
        seconds, _, said = timed("diff", str(old), str(new))   # (the peak above is the larger of the two)
        print(f"diff: {seconds:.1f} s; {said.splitlines()[0].split(' between ')[0]} ({moved} moves planted)")
        print(fingerprint_cost(Path(scratch) / "submitted"))


def fingerprint_cost(submitted: Path) -> str:
    assignment = assignments.get(ASSIGNMENT)
    common = stub_and_solution(assignment)
    codes = sorted({(function, code) for path in sorted(submitted.glob(f"*/{ASSIGNMENT}/*.ipynb"))
                    for function, code in graded_code(path, assignment).items() if code})
    started = time.process_time()
    function, code = codes[0]
    similarity.fingerprint_of(code, common.get(function, ""))   # the tokenizer's first use
    first = time.process_time() - started
    started = time.process_time()
    for function, code in codes[1:]:
        similarity.fingerprint_of(code, common.get(function, ""))
    each = (time.process_time() - started) / max(1, len(codes) - 1)
    return (f"similarity fingerprints: {len(codes)} distinct (function, code), {each * 1000:.2f} ms of CPU each "
            f"after {first:.2f} s for the first")


if __name__ == "__main__":
    main()
