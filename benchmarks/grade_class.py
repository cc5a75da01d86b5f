"""Grade a class with our grader and with `nbgrader autograde`, on the same notebooks (not a test).

Builds a class from the released Lesson 1 notebook (correct answers, typical mistakes, untouched
stubs, a few broken or hostile ones), grades it with `python -m autograder grade` (sandbox on,
default workers) and with `nbgrader autograde` in a real nbgrader course folder, Exercise 4 pointed
at a tiny offline pipeline for both. Compares the verdicts on the checks both have, then times our
grader on a larger class, then a class of Lesson 2 submissions (ours only: nbgrader would train the
model in every notebook), and prints `speedup vs nbgrader autograde: N.Nx` last. Our grader grades each
class three times (`--runs`) and its median time is the figure, every run's time beside it.

    python benchmarks/grade_class.py               # 40 submissions, then 200 with our grader (ours: median of 3 runs)
    python benchmarks/grade_class.py --size 10 --large 0
    python benchmarks/grade_class.py --no-nbgrader  # our grader's figures only (two minutes, not ten)
    python benchmarks/grade_class.py --no-nbgrader --large 0 --lesson2 0 --gpu   # on a CUDA machine: GPU-seconds
    python benchmarks/grade_class.py --runs 1      # one run of ours per class
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.clip_submissions import (CLIP_ASSIGNMENT, CLIP_CORRECT, CLIP_HOSTILE, CLIP_MISTAKES,  # noqa: E402
                                    build_clip)
from tests.submissions import ASSIGNMENT, CORRECT, HOSTILE, MISTAKES, build, variant_with  # noqa: E402
from autograder.pipeline.stand_in import build_tiny_pipeline  # noqa: E402

# nbgrader's visible test cells and the hidden check that asks the same question.
SHARED = {
    "test_cross_attention_shape": "cross_attention: weights have shape (queries, text tokens) for any sizes",
    "test_cross_attention_rows": "cross_attention: each row of weights sums to 1 with no negative weight",
    "test_apply_cfg_w0": "apply_cfg: w=0 returns the unconditional prediction",
    "test_apply_cfg_w1": "apply_cfg: w=1 returns the conditional prediction",
}
# Hostile submissions that fool an in-kernel grader on purpose; listed, not counted as disagreements.
FOOLS_NBGRADER = {"input_transformer"}


def class_mix(size: int) -> list[tuple[str, object]]:
    """A realistic class: ~40% correct, ~40% one mistake, ~20% stubs, broken or hostile notebooks."""
    correct = [("correct", variant_with())] + list(CORRECT.items())
    mistakes = [(name, variant) for name, (variant, _) in MISTAKES.items()]
    others = [(name, HOSTILE[name][0]) for name in ("untouched_stubs", "exits", "nan_outputs", "always_equal_objects",
                                                     "input_transformer")]
    pools = [(correct, 0.4), (mistakes, 0.4), (others, 0.2)]
    chosen = []
    for pool, share in pools:
        count = round(size * share) if pool is not others else size - len(chosen)
        chosen += [pool[i % len(pool)] for i in range(count)]
    return [(f"s{index:03d}_{name}", variant) for index, (name, variant) in enumerate(chosen)]


def write_class(folder: Path, size: int) -> list[str]:
    students = []
    for student, variant in class_mix(size):
        build(variant, folder / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
        students.append(student)
    return students


@contextlib.contextmanager
def scratch_class(size: int, prefix: str):
    """A scratch folder with the tiny pipeline in tiny-sd/ and a class of `size` in submitted/: (folder, students)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        scratch = Path(scratch)
        build_tiny_pipeline(scratch / "tiny-sd")
        yield scratch, write_class(scratch / "submitted", size)


def write_lesson2_class(folder: Path, size: int) -> int:
    """Lesson 2's corpora in the same proportions as Lesson 1's class."""
    correct = list(CLIP_CORRECT.items())
    mistakes = [(name, entry[0]) for name, entry in CLIP_MISTAKES.items()]
    others = [(name, entry[0]) for name, entry in CLIP_HOSTILE.items()]
    pools = [(correct, round(size * 0.4)), (mistakes, round(size * 0.4))]
    pools.append((others, size - sum(count for _, count in pools)))
    chosen = [pool[i % len(pool)] for pool, count in pools for i in range(count)]
    for index, (name, cells) in enumerate(chosen):
        build_clip(cells, folder / f"s{index:03d}_{name}" / CLIP_ASSIGNMENT / f"{CLIP_ASSIGNMENT}.ipynb")
    return len(chosen)


def grade_ours(submitted: Path, out: Path, pipeline: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted), "--out", str(out), "--quiet",
                    "--force", "--sd-model", str(pipeline), "--sd-device", "cpu"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def grade_ours_runs(submitted: Path, out: Path, pipeline: Path, runs: int) -> tuple[float, str]:
    """The median of `runs` runs, and how to say it. A run of ours lasts seconds, and this kind of machine's
    speed swings by a third from one minute to the next; nbgrader's run lasts minutes and averages over
    the swings. Each run grades into a folder of its own (a regrade into the same folder also keeps the
    run it replaces for the class report's diff: more work than a first grading)."""
    times = [grade_ours(submitted, out if run == 0 else out.with_name(f"{out.name}-{run + 1}"), pipeline)
             for run in range(runs)]
    median = statistics.median(times)
    return median, "" if runs == 1 else f"; median of {runs} runs: {', '.join(f'{t:.1f}' for t in times)} s"


# nbgrader as a course runs it without this package: its own Execute step runs each notebook in a kernel.
# (The course's nbgrader_config.py would hand autograde to our grader and time it twice.)
PLAIN_NBGRADER_CONFIG = """c = get_config()
c.CourseDirectory.source_directory = "exercises"
c.ExecutePreprocessor.timeout = 1800
"""


def grade_nbgrader(course: Path, submitted: Path, students: list[str], pipeline: Path) -> float:
    course.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(PLAIN_NBGRADER_CONFIG)
    shutil.copytree(ROOT / "exercises" / ASSIGNMENT, course / "exercises" / ASSIGNMENT)
    shutil.copytree(submitted, course / "submitted")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "SD_MODEL_ID": str(pipeline), "HF_HUB_OFFLINE": "1"}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    quiet = {"cwd": course, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(nbgrader + ["generate_assignment", ASSIGNMENT, "--force"], **quiet)
    for student in students:
        subprocess.run(nbgrader + ["db", "student", "add", student], **quiet)
    started = time.perf_counter()
    # It exits 1 when any notebook failed (a student's os._exit kills its kernel) but grades the others.
    run = subprocess.run(nbgrader + ["autograde", ASSIGNMENT, "--force"], cwd=course, env=env, capture_output=True,
                         text=True)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        failed = sorted({line.split("student '")[1].split("'")[0] for line in run.stderr.splitlines()
                         if "for student '" in line})
        print(f"nbgrader autograde exited {run.returncode}; it reported errors for: {', '.join(failed) or '?'}")
    return seconds


def nbgrader_verdicts(course: Path, students: list[str]) -> dict[str, dict[str, bool]]:
    """Visible tests are worth 0 points, so a score cannot tell pass from fail: read the autograded cells."""
    import nbformat

    verdicts = {}
    for student in students:
        path = course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        cells = {}
        if path.exists():   # not there: nbgrader could not run the notebook
            for cell in nbformat.read(path, as_version=4).cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in SHARED:
                    cells[grade_id] = not any(o.output_type == "error" for o in cell.get("outputs", []))
        verdicts[student] = {cell: cells.get(cell, False) for cell in SHARED}
    return verdicts


def our_verdicts(out: Path, students: list[str]) -> dict[str, dict[str, bool]]:
    verdicts = {}
    for student in students:
        tests = {t["name"]: t for t in json.loads((out / ASSIGNMENT / student / "results.json").read_text())["tests"]}
        verdicts[student] = {cell: tests[name]["score"] == tests[name]["max_score"] for cell, name in SHARED.items()}
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=40, help="class size graded by both")
    parser.add_argument("--large", type=int, default=200, help="a larger class graded by ours only (0: skip)")
    parser.add_argument("--no-nbgrader", action="store_true", help="time our grader only (no comparison)")
    parser.add_argument("--lesson2", type=int, default=40, help="Lesson 2 submissions graded by ours (0: skip)")
    parser.add_argument("--runs", type=int, default=3, help="runs of our grader per class; their median is reported")
    parser.add_argument("--gpu", action="store_true",
                        help="also grade the class with Exercise 4 on the GPU (bk-sdm-small's architecture, random "
                             "float16 weights unless the real ones load) and print GPU-seconds per student")
    parser.add_argument("--gpu-shards", type=int, default=2, help="with --gpu: the sharded run's shards (default 2)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; our grader uses its default workers ({os.cpu_count()})")

    with tempfile.TemporaryDirectory(prefix="grade-class-") as scratch:
        scratch = Path(scratch)
        pipeline = scratch / "tiny-sd"
        build_tiny_pipeline(pipeline)
        students = write_class(scratch / "submitted", args.size)

        ours, runs = grade_ours_runs(scratch / "submitted", scratch / "ours", pipeline, args.runs)
        print(f"our grader, {args.size} submissions: {ours:.1f} s ({ours / args.size:.2f} s per submission{runs})")
        if args.no_nbgrader:
            theirs = None
        else:
            theirs = grade_nbgrader(scratch / "course", scratch / "submitted", students, pipeline)
            compare(scratch, students, args.size, theirs)

        if args.large:
            large = write_class(scratch / "large", args.large)
            seconds, runs = grade_ours_runs(scratch / "large", scratch / "ours-large", pipeline, args.runs)
            print(f"our grader, {len(large)} submissions: {seconds:.1f} s ({seconds / len(large):.2f} s per submission"
                  f"{runs})")

        if args.gpu:
            grade_on_gpu(scratch, args.size, args.gpu_shards)

        if args.lesson2:
            count = write_lesson2_class(scratch / "lesson2", args.lesson2)
            seconds, runs = grade_ours_runs(scratch / "lesson2", scratch / "ours-lesson2", pipeline, args.runs)
            print(f"our grader, Lesson 2, {count} submissions: {seconds:.1f} s ({seconds / count:.2f} s per submission"
                  f"{runs})")

    if theirs is not None:
        print(f"speedup vs nbgrader autograde: {theirs / ours:.1f}x")


def grade_on_gpu(scratch: Path, size: int, shards: int) -> None:
    """The class again with Exercise 4 on the GPUs: in one run (one pipeline), then in `shards` shards started
    together, each loading its own pipeline on GPU I mod G, and merged. Each run holds its GPUs throughout,
    so GPU-seconds = wall x GPUs used."""
    import torch

    if not torch.cuda.is_available():
        print("GPU run skipped: torch.cuda.is_available() is False on this machine (no CUDA device or driver)")
        return
    from gpu_smoke import build_random_bk_sdm_small

    model = scratch / "bk-sdm-small-architecture"
    build_random_bk_sdm_small(model)
    gpus, name = torch.cuda.device_count(), torch.cuda.get_device_name(0)

    def grade(out: str, *more: str) -> subprocess.Popen:
        with (scratch / f"{out}.log").open("w") as log:   # the child keeps its own copy of the descriptor
            return subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(scratch / "submitted"),
                                     "--out", str(scratch / out), "--quiet", "--force", "--sd-model", str(model),
                                     "--sd-device", "cuda", "--require-gpu", *more], stdout=subprocess.DEVNULL,
                                    stderr=log)

    def timed(*runs: subprocess.Popen) -> tuple[float, list[int]]:
        started = time.perf_counter()
        codes = [run.wait() for run in runs]
        return time.perf_counter() - started, codes

    seconds, codes = timed(grade("ours-gpu"))
    if codes != [0]:
        print((scratch / "ours-gpu.log").read_text()[-3000:])
    print(f"our grader on {gpus} x {name}, {size} submissions, one run: {seconds:.1f} s, exit {codes[0]}; "
          f"{seconds / size:.2f} GPU-seconds per student (one pipeline, held for the whole run)")
    used = min(gpus, shards)
    seconds, codes = timed(*(grade(f"ours-gpu-shard-{i}", "--shard", f"{i}/{shards}") for i in range(shards)))
    merged = subprocess.run([sys.executable, "-m", "autograder", "merge",
                             *(str(scratch / f"ours-gpu-shard-{i}") for i in range(shards)), "--out",
                             str(scratch / "ours-gpu-merged")], capture_output=True, text=True)
    same = merged.returncode == 0 and (scratch / "ours-gpu-merged" / ASSIGNMENT / "grades.csv").read_bytes() == (
        scratch / "ours-gpu" / ASSIGNMENT / "grades.csv").read_bytes()
    print(f"our grader on {used} x {name}, {size} submissions, {shards} shards at once (a pipeline each, shard I on "
          f"GPU I mod {gpus}): {seconds:.1f} s, exits {codes}, merge exit {merged.returncode}; "
          f"{seconds * used / size:.2f} GPU-seconds per student; grades.csv "
          f"{'identical to' if same else 'DIFFERENT from'} the one run's")


def compare(scratch: Path, students: list[str], size: int, theirs: float) -> None:
    """nbgrader's time, and where its verdicts and ours differ on the checks both have."""
    print(f"nbgrader autograde, {size} submissions: {theirs:.1f} s ({theirs / size:.2f} s per submission)")
    mine, nbg = our_verdicts(scratch / "ours", students), nbgrader_verdicts(scratch / "course", students)
    compared = [(s, c) for s in students for c in SHARED if s.split("_", 1)[1] not in FOOLS_NBGRADER]
    disagreements = [(s, c, mine[s][c], nbg[s][c]) for s, c in compared if mine[s][c] != nbg[s][c]]
    print(f"agreement on the {len(SHARED)} shared checks: {len(compared) - len(disagreements)}/{len(compared)}")
    for student, cell, ours_ok, theirs_ok in disagreements:
        print(f"  {student} {cell}: ours {'pass' if ours_ok else 'fail'}, nbgrader {'pass' if theirs_ok else 'fail'}")
    for student in [s for s in students if s.split("_", 1)[1] in FOOLS_NBGRADER]:
        print(f"  {student} (hostile): nbgrader passes {sum(nbg[student].values())}/{len(SHARED)}, "
              f"ours {sum(mine[student].values())}/{len(SHARED)}")


if __name__ == "__main__":
    main()
