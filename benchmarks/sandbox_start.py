"""What a sandbox's start costs its zygote in CPU, with the grader's matplotlib font list and without (not a test).

The zygote imports torch, numpy, PIL and matplotlib before it says it is ready. Without a font list
matplotlib scans every font on the machine (sandbox/font_list.py hands the grader's over). Starts the
sandbox `--starts` times each way, alternating (this machine's speed drifts), and prints the CPU-seconds
its processes used from the start to "ready".

    python benchmarks/sandbox_start.py [--starts 4] [--mode auto|bwrap|uid]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.sandbox import font_list  # noqa: E402
from autograder.sandbox.limits import Limits  # noqa: E402
from autograder.sandbox.modes import sandbox_mode  # noqa: E402
from autograder.sandbox.zygote_host import Sandbox  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_of_tree(root: int) -> float:
    """CPU-seconds of `root` and every process below it (the zygote sits below bubblewrap's)."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            parents[int(entry)] = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError):
            continue
    tree, total = {root}, 0.0
    while True:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        if not more:
            break
        tree |= more
    for pid in tree:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def start_once(mode: str) -> float:
    sandbox = Sandbox(mode, Limits())
    try:
        sandbox._start()   # what its first notebook would do: start the zygote and wait for "ready"
        return cpu_of_tree(sandbox.process.pid)
    finally:
        sandbox.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--mode", default="auto")
    args = parser.parse_args()
    mode = sandbox_mode(args.mode)
    graders = font_list.cache_folder()
    if not list(graders.glob("fontlist-v*.json")):
        raise SystemExit(f"no matplotlib font list in {graders}: import matplotlib once on this machine first")
    with tempfile.TemporaryDirectory() as empty:
        figures = {"with the grader's font list": [], "without (matplotlib scans the fonts)": []}
        for _ in range(args.starts):
            for label in figures:
                os.environ["MPLCONFIGDIR"] = str(graders if label.startswith("with ") else empty)
                figures[label].append(start_once(mode))
    print(f"sandbox ({mode}) start to ready, zygote CPU-seconds over {args.starts} alternating starts each:")
    for label, seconds in figures.items():
        print(f"  {label}: mean {statistics.mean(seconds):.2f}, runs {', '.join(f'{s:.2f}' for s in seconds)}")


if __name__ == "__main__":
    main()
