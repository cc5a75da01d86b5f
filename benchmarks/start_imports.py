"""What the grader's start-up imports cost with Python's garbage collector on and off (not a test).

The pipeline server, the workers' template and the sandbox's zygote each start by importing large
libraries, and import with the collector off (server.py, template_imports.py, zygote.py): those imports
make hundreds of thousands of objects and hardly a cycle. This runs each process's imports in a fresh
Python, alternating on and off (this machine's speed drifts), and prints the CPU-seconds they took.
Then what the imports leave in cycles (the template and the zygote freeze it), and what the pipeline's
load leaves (the server collects it before it freezes, walking only what the load made).

    python benchmarks/start_imports.py [--runs 4]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.grading.template import IMPORTED_BEFORE_FORKING  # noqa: E402

SERVER = "import torch\nfrom diffusers import StableDiffusionPipeline"
IMPORTS = {
    "pipeline server (torch, diffusers' StableDiffusionPipeline)": SERVER,
    "workers' template (torch, pytest, the grading modules)": "\n".join(f"import {m}" for m in IMPORTED_BEFORE_FORKING),
    "sandbox zygote (numpy, PIL, torch, matplotlib)": "import numpy, PIL.Image, torch\nimport matplotlib\n"
        "matplotlib.use('Agg')\nimport matplotlib.pyplot",
}

PROBE = """import gc, time
{switch}
started = time.process_time()
{imports}
print(time.process_time() - started)
"""

# Collector off, as in the grader: what a collection finds after the imports, and (with a pipeline folder)
# after the load once the imports are frozen, against a collection of everything.
LEFTOVERS = """import gc, sys, time
gc.disable()
{imports}
def collect():
    gc.set_debug(gc.DEBUG_SAVEALL)
    started = time.process_time()
    gc.collect()
    seconds = time.process_time() - started
    found, gc.garbage[:] = list(gc.garbage), []
    gc.set_debug(0)
    tensors = sum(type(o).__name__ in ("Tensor", "Parameter") for o in found)
    return f"{{len(found)}} objects ({{sum(map(sys.getsizeof, found)) / 1e6:.2f}} MB, {{tensors}} tensors) in {{seconds * 1000:.0f}} ms"
if len(sys.argv) > 1:
    gc.freeze()
    pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1], safety_checker=None, requires_safety_checker=False)
    print("after the load, imports frozen:", collect())
else:
    print("after the imports:", collect())
"""


def run(program: str, *arguments: str) -> str:
    done = subprocess.run([sys.executable, "-c", program, *arguments], capture_output=True, text=True, cwd=ROOT,
                          check=True)
    return done.stdout.strip().splitlines()[-1]


def cpu_seconds(imports: str, collector: bool) -> float:
    return float(run(PROBE.format(switch="" if collector else "gc.disable()", imports=imports)))


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
    print("left in cycles, collector off:")
    for label, imports in IMPORTS.items():
        print(f"  {label}: {run(LEFTOVERS.format(imports=imports))}")
    from autograder.pipeline.stand_in import build_tiny_pipeline

    with tempfile.TemporaryDirectory() as folder:
        build_tiny_pipeline(Path(folder))
        print(f"  the tiny pipeline's load in the server: {run(LEFTOVERS.format(imports=SERVER), folder)}")


if __name__ == "__main__":
    main()
