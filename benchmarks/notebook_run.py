"""How long one submission's grading run takes in the sandbox: the notebook's cells from the top,
then opening and closing one graded function (not a test).

    python benchmarks/notebook_run.py [NOTEBOOK]   (default: Lesson 1's committed solution)
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import assignments  # noqa: E402
from autograder.sandbox.limits import Limits  # noqa: E402
from autograder.sandbox.modes import sandbox_mode  # noqa: E402
from autograder.sandbox.student_process import NotebookProcess  # noqa: E402
from autograder.sandbox.zygote_host import Sandbox  # noqa: E402
from autograder.intake.submission import extract_student_code, locked_cells  # noqa: E402

REPEATS = 10


def main() -> None:
    assignment = assignments.get("text_conditioning_guidance")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "solutions" / assignment.name / assignment.notebook
    code = extract_student_code(path, locked_cells(assignment.release_notebook),
                                assignment.definitions_only)
    cells = [{"number": c.number, "source": c.source} for c in code.cells]
    sandbox = Sandbox(sandbox_mode("auto"), Limits())
    runs, opens = [], []
    try:
        for attempt in range(REPEATS + 1):   # the first one also starts the sandbox: not counted
            started = time.perf_counter()
            with NotebookProcess(cells, sandbox) as notebook:
                ran = time.perf_counter()
                notebook.open("apply_cfg")
                notebook.close_function()
                opened = time.perf_counter()
            sandbox.reset()
            if attempt:
                runs.append(ran - started)
                opens.append(opened - ran)
    finally:
        sandbox.close()
    print(f"{path.name}: {len(cells)} code cells, sandbox {sandbox.mode}")
    print(f"notebook run: median {statistics.median(runs) * 1000:.0f} ms over {REPEATS} runs")
    print(f"opening and closing one function: median {statistics.median(opens) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
