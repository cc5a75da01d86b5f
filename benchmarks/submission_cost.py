"""What one submission costs once a worker has started: CPU and page faults, worker and sandbox (not a test).

Past start-up, a large class's time is this cost times the class (the 200 class of benchmarks/grade_class.py
is mostly per-submission work). Builds the class benchmark's class, starts one real grading worker (forked
from the template, one torch thread, as in a run with two workers on two CPUs) and grades the class's
notebooks one after another, leaving out the one whose sweep asks for 480x480 images (pipeline work, not
per-submission work). Reads /proc around the submissions after the first few:

* the worker's own CPU (pytest, the checks, the wire and, since there is no pipeline server here, the
  stand-in's calls that memory cannot answer: a few per class);
* the sandbox's: every process a submission starts (the notebook's supervisor, its run, one server per
  graded function) is reaped by the sandbox's zygote, so the zygote's children's CPU and minor page faults
  count them all. On a virtual machine whose page tables are virtualised in software each fault costs
  several microseconds: forking a process that holds torch is cheap, what its child then touches is not.

    python benchmarks/submission_cost.py
    python benchmarks/submission_cost.py --size 80
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from grade_class import ASSIGNMENT, scratch_class  # noqa: E402

from autograder.grading.worker import GradingWorker  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
WARM_UP = 6   # the sandbox's start and its huge-page collapse (at its second notebook) come before these


def stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()   # fields from the state on: the name may hold spaces


def descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(stat_fields(int(entry))[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def zygote_of(worker: int) -> int:
    for pid in descendants(worker):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                words = handle.read().split(b"\0")
        except OSError:
            continue
        if any(word.endswith(b"zygote.py") for word in words) and not words[0].endswith(b"bwrap"):
            return pid
    raise RuntimeError("the worker's sandbox has no zygote process")


def counters(worker: int, zygote: int) -> dict[str, float]:
    own, reaped = stat_fields(worker), stat_fields(zygote)
    return {"worker user": int(own[11]) / TICK, "worker system": int(own[12]) / TICK,
            "sandbox user": int(reaped[13]) / TICK, "sandbox system": int(reaped[14]) / TICK,
            "sandbox faults": int(reaped[8]), "wall": time.perf_counter()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=40, help="class size (the 480x480 sweep is left out)")
    args = parser.parse_args()
    with scratch_class(args.size, "submission-cost-") as (scratch, every):
        students = [student for student in every if "480" not in student]
        if len(students) <= WARM_UP:
            parser.error(f"--size must leave more than {WARM_UP} submissions")
        options = ["--sd-model", str(scratch / "tiny-sd"), "--sd-device", "cpu"]
        worker = GradingWorker(threads=1)
        try:
            for index, student in enumerate(students):
                if index == WARM_UP:
                    before = counters(worker.process.pid, zygote_of(worker.process.pid))
                outcome = worker.grade(scratch / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                                       ASSIGNMENT, options, timeout=300)
                if outcome.get("grader_failed"):
                    raise RuntimeError(f"grader error on {student}: {outcome.get('grader_log')}")
            after = counters(worker.process.pid, zygote_of(worker.process.pid))
        finally:
            worker.close()
    # A submission's processes are reaped when the next one starts: both readings lag by one, alike.
    count = len(students) - WARM_UP
    each = {name: (after[name] - before[name]) / count for name in after}
    print(f"{count} submissions graded one after another in one worker (after {WARM_UP} to warm up), per submission:")
    print(f"  wall {1000 * each['wall']:.0f} ms")
    print(f"  worker  CPU {1000 * (each['worker user'] + each['worker system']):.0f} ms "
          f"(user {1000 * each['worker user']:.0f}, system {1000 * each['worker system']:.0f})")
    print(f"  sandbox CPU {1000 * (each['sandbox user'] + each['sandbox system']):.0f} ms "
          f"(user {1000 * each['sandbox user']:.0f}, system {1000 * each['sandbox system']:.0f}), "
          f"{each['sandbox faults']:.0f} minor page faults")


if __name__ == "__main__":
    main()
