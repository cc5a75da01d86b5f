"""What a fork of the sandbox's zygote costs, with its memory in 4-KiB pages and in huge pages (not a test).

Why the zygote collapses its private memory into huge pages once it has served a submission
(autograder/sandbox/inside/huge_pages.py): every submission forks it once and forks its notebook's process
once per graded function, and each fork copies the page tables of all private memory. Imports what the
zygote imports (torch, numpy, PIL, matplotlib) in a fresh Python, then times forks whose child exits at
once, and forks whose child touches every Python object (a full garbage collection: the copy-on-write
worst case), before and after the collapse, and once the objects are frozen (gc.freeze(), as the zygote
freezes them: the child's collection then leaves them alone). Prints kernel and user milliseconds per fork, parent and
child together.

    python benchmarks/fork_cost.py
    python benchmarks/fork_cost.py --forks 200
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = """
import ctypes, gc, os, resource, sys, time
sys.path.insert(0, {inside!r})
import numpy, PIL.Image, torch, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
import huge_pages

def child(touch):
    if touch:
        gc.collect()
    os._exit(0)

def per_fork(touch, forks, fork=os.fork):
    before, faults = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    for _ in range(forks):
        pid = fork()
        if pid == 0:
            child(touch)
        os.waitpid(pid, 0)
    after, faults = os.times(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - faults
    system = (after.system - before.system) + (after.children_system - before.children_system)
    user = (after.user - before.user) + (after.children_user - before.children_user)
    return 1000 * system / forks, 1000 * user / forks, faults / forks

def huge_kib():
    with open("/proc/self/smaps_rollup") as rollup:
        return int(rollup.read().split("AnonHugePages:")[1].split()[0])

def report(label, touching=(False, True), fork=os.fork):
    for touch in touching:
        what = "child touches every object" if touch else "child exits at once"
        system, user, faults = per_fork(touch, {forks} if not touch else max(10, {forks} // 5), fork)
        print(f"{{label:<22}} {{what:<27}} kernel {{system:6.2f}} ms  user {{user:6.2f}} ms  "
              f"{{faults:6.0f}} page faults per fork")

report("4-KiB pages")
started = time.perf_counter()
collapsed = huge_pages.collapse()
print(f"collapsed {{collapsed / 2**20:.0f}} MiB into huge pages in {{time.perf_counter() - started:.2f}} s "
      f"(AnonHugePages {{huge_kib() / 1024:.0f}} MiB)")
report("after the collapse")
gc.freeze()   # as the zygote does once it has imported: a child's full collection no longer walks these objects
report("collapsed and frozen")
# libc's fork() runs none of the handlers that Python code registered with os.register_at_fork (threading,
# logging, random, concurrent.futures, torch, matplotlib): what those cost a child that runs no Python.
report("... without them", touching=(False,), fork=ctypes.CDLL(None).fork)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forks", type=int, default=60, help="forks per figure (a fifth of them for the touching child)")
    args = parser.parse_args()
    print(f"fork cost of a process holding the zygote's imports, {args.forks} forks per figure", flush=True)
    code = MEASURE.format(inside=str(ROOT / "autograder" / "sandbox" / "inside"), forks=args.forks)
    sys.exit(subprocess.run([sys.executable, "-c", code]).returncode)


if __name__ == "__main__":
    main()
