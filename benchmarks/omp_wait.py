"""Stand-in pipeline calls with OpenMP's threads spinning or sleeping when they wait (not a test).

Why grading processes run with OMP_WAIT_POLICY=PASSIVE (grading/worker.compute_environment): on a
machine that is busy anyway, threads that spin while they wait steal the CPU the other threads need.
Runs three 12-step stand-in generations in a fresh Python per policy, with a CPU-bound neighbour on
every core but one, and prints the seconds per call.

    python benchmarks/omp_wait.py            # 2 threads per call, as a grading process with 2 CPUs
    python benchmarks/omp_wait.py --threads 4
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CALLS = """
import time, torch
from autograder.pipeline import sd_pipeline
from autograder.pipeline.spec import PipelineSpec
pipe, _ = sd_pipeline.load_for_grading(PipelineSpec(), False)
state = sd_pipeline.fresh_generator_state(42)
for scale in (1.0, 2.5, 6.0):
    started = time.perf_counter()
    sd_pipeline._run_pipeline(pipe, "a red apple", scale, 12, state)
    print(f"{time.perf_counter() - started:.2f}")
"""


def busy() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads per call")
    args = parser.parse_args()
    neighbours = [multiprocessing.Process(target=busy, daemon=True) for _ in range(max(1, (os.cpu_count() or 2) - 1))]
    for neighbour in neighbours:
        neighbour.start()
    try:
        for policy in ("ACTIVE", "PASSIVE"):
            env = {**os.environ, "OMP_WAIT_POLICY": policy, "OMP_NUM_THREADS": str(args.threads),
                   "PYTHONPATH": str(ROOT)}
            run = subprocess.run([sys.executable, "-c", CALLS], env=env, capture_output=True, text=True, cwd=ROOT)
            seconds = run.stdout.split() if run.returncode == 0 else [f"failed: {run.stderr[-300:]}"]
            print(f"OMP_WAIT_POLICY={policy}, {args.threads} threads, {len(neighbours)} busy neighbours: "
                  f"{', '.join(seconds)} s per call")
    finally:
        for neighbour in neighbours:
            neighbour.kill()


if __name__ == "__main__":
    main()
