"""Where a class's grading time goes: CPU-seconds by process, over one `grade` run (not a test).

Builds the class benchmark's class (benchmarks/grade_class.py: correct answers, mistakes, stubs and hostile
notebooks) and grades it with `python -m autograder grade` (sandbox on, default workers, Exercise 4 on the
tiny CPU pipeline) while sampling /proc every 20 ms. Prints the machine's busy CPU-seconds and how much
of it each long-lived grader process took: the grade command, the template every grading process is
forked from, the pipeline server (with its lanes), the workers (pytest and the checks). The sandboxes'
processes are short-lived (one notebook run and a few function servers per submission), so their share
is what is left of the machine's busy time; run it on an otherwise idle machine.

    python benchmarks/grading_cpu.py            # 40 submissions
    python benchmarks/grading_cpu.py --size 200
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from grade_class import scratch_class  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, float, int]]:
    """pid -> (parent, own CPU-seconds, start time in ticks) for every process now."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            found[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, int(fields[19]))
    return found


def command_line(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def machine_busy() -> float:
    with open("/proc/stat") as handle:
        ticks = [int(n) for n in handle.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK


def grade_sampled(command: list[str]) -> tuple[float, float, dict[str, float]]:
    started, busy, sampling = time.perf_counter(), machine_busy(), time.process_time()
    grade = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, tuple[int, float, int]] = {}
    spawned = set()   # the grade command's children started as a fresh Python: the pipeline server (server.py)
    while grade.poll() is None:
        for pid, entry in processes().items():
            if pid in seen:   # its first parent: one that outlives the grade command is re-parented to init
                seen[pid] = (seen[pid][0], *entry[1:])
            elif pid == grade.pid or entry[0] in seen or entry[0] == grade.pid:
                seen[pid] = entry
            # Read again until it has one: between its fork and its exec a child shows the grade command's.
            if seen.get(pid, (0,))[0] == grade.pid and pid not in spawned and b"spawn_main" in command_line(pid):
                spawned.add(pid)
        time.sleep(0.02)
    wall, busy = time.perf_counter() - started, machine_busy() - busy
    roles = {"grade command": seen.get(grade.pid, (0, 0.0, 0))[1], "this benchmark's sampling": time.process_time() - sampling}
    # The grade command's children: the pipeline server (with its lanes, forked from it once it has loaded), the
    # template (multiprocessing's forkserver) that forks the workers, and the class report's helpers.
    for child in [pid for pid, entry in seen.items() if entry[0] == grade.pid]:
        forked = [pid for pid, entry in seen.items() if entry[0] == child]
        if child in spawned:
            roles["pipeline server"] = seen[child][1] + sum(seen[pid][1] for pid in forked)
        elif forked:
            roles["template (forkserver)"] = seen[child][1]
            roles["workers"] = sum(seen[pid][1] for pid in forked)
        else:
            roles["other children of the grade command"] = roles.get("other children of the grade command", 0) \
                + seen[child][1]
    roles["sandboxes (the rest of the machine's busy time)"] = busy - sum(roles.values())
    return wall, busy, roles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=40, help="class size")
    args = parser.parse_args()
    with scratch_class(args.size, "grading-cpu-") as (scratch, _):
        wall, busy, roles = grade_sampled([
            sys.executable, "-m", "autograder", "grade", str(scratch / "submitted"), "--out", str(scratch / "out"),
            "--quiet", "--force", "--sd-model", str(scratch / "tiny-sd"), "--sd-device", "cpu"])
    print(f"{args.size} submissions: {wall:.1f} s wall; the machine was busy {busy:.1f} CPU-s "
          f"({busy / wall:.2f} of {os.cpu_count()} CPUs)")
    for role, seconds in sorted(roles.items(), key=lambda item: -item[1]):
        print(f"  {seconds:6.1f} CPU-s  {seconds / args.size:5.3f} per submission  {role}")


if __name__ == "__main__":
    main()
