"""Peak memory of grading one submission, over the whole process tree (grade command, worker, sandbox
zygote, notebook run, function servers), sampled every 50 ms: what a Gradescope container must hold.

    python benchmarks/grading_memory.py [--sandbox auto|bwrap|uid] [--no-namespaces]

Prints the peak of the summed PSS (proportional set size: shared pages split between the processes that
share them, so forked children are not counted twice) and of the summed RSS (an upper bound).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.submissions import ASSIGNMENT, build, variant_with  # noqa: E402


def tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack += children.get(pid, [])
    return found


def memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in kB."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in ("Pss", "Rss"):
                    values[name] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values.get("Pss", 0), values.get("Rss", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", default="auto")
    parser.add_argument("--no-namespaces", action="store_true", help="as in Docker: bubblewrap cannot run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        notebook = build(variant_with(), Path(scratch) / "in" / "ada" / f"{ASSIGNMENT}.ipynb")
        command = [sys.executable, "-m", "autograder", "grade", str(notebook), "--out", str(Path(scratch) / "out"),
                   "--workers", "1", "--quiet", "--force", "--sandbox", args.sandbox]
        if args.no_namespaces:
            command = [sys.executable, "-m", "tests.no_namespaces", *command]
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak_pss = peak_rss = 0
        while process.poll() is None:
            pss, rss = map(sum, zip(*(memory(p) for p in tree(process.pid))))
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            time.sleep(0.05)
        out, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"grading failed:\n{out[-2000:]}\n{err[-2000:]}")
        mode = out.rsplit("(sandbox: ", 1)[-1].split(")")[0]
        print(f"one submission, sandbox {mode}: {time.monotonic() - started:.1f} s; peak memory of the process tree: "
              f"PSS {peak_pss / 1024:.0f} MiB, RSS {peak_rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
