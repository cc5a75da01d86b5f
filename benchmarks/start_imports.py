"""What the grader's start-up imports cost with Python's garbage collector on and off (not a test).

The pipeline server, the workers' template and the sandbox's zygote each start by importing large
libraries, and import with the collector off (server.py, template_imports.py, zygote.py): those imports
make hundreds of thousands of objects and hardly a cycle. This runs each process's imports in a fresh
Python, alternating on and off (this machine's speed drifts), and prints the CPU-seconds they took.

    python benchmarks/start_imports.py [--runs 4]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORTS = {
    "pipeline server (torch, diffusers' StableDiffusionPipeline)": "import torch\nfrom diffusers import StableDiffusionPipeline",
    "workers' template (torch, pytest, the grading modules)": "import pytest, torch\nimport autograder.grading.worker, "
        "autograder.grading.session_of_submissions, autograder.pipeline.sd_pipeline, autograder.sandbox.student_process",
    "sandbox zygote (numpy, PIL, torch, matplotlib)": "import numpy, PIL.Image, torch\nimport matplotlib\n"
        "matplotlib.use('Agg')\nimport matplotlib.pyplot",
}

PROBE = """import gc, time
{switch}
started = time.process_time()
{imports}
print(time.process_time() - started)
"""


def cpu_seconds(imports: str, collector: bool) -> float:
    program = PROBE.format(switch="" if collector else "gc.disable()", imports=imports)
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, check=True)
    return float(run.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    print(f"import CPU-seconds, collector on -> off, means of {args.runs} alternating fresh processes:")
    for label, imports in IMPORTS.items():
        times = {True: [], False: []}
        for _ in range(args.runs):
            for collector in (True, False):
                times[collector].append(cpu_seconds(imports, collector))
        on, off = statistics.mean(times[True]), statistics.mean(times[False])
        print(f"  {label}: {on:.2f} -> {off:.2f} ({on - off:.2f} less; "
              f"runs on {', '.join(f'{t:.2f}' for t in times[True])}, off {', '.join(f'{t:.2f}' for t in times[False])})")


if __name__ == "__main__":
    main()
