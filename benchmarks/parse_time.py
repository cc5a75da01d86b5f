"""How long the grader (a trusted process) spends reading hostile notebooks, and what it keeps (not a test).

    python benchmarks/parse_time.py
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.intake.submission import SubmissionError, extract_student_code  # noqa: E402


def notebook(cells: list[str]) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [],
                                  "execution_count": None} for c in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


CASES = {
    "663 KB of one-line statements in one cell": notebook(["a=1\n" * 165_000]),
    "2.3 MB of one-line statements in 40 cells": notebook(["a = 1\n" * 8000] * 40),
    "165 KB of ! commands in one cell": notebook(["!echo hi\n" * 18_000]),
    "six 49 KB cells of ! commands": notebook(["!echo hi\n" * 5400] * 6),
    "a 19 MB string cell": notebook(["x = '" + "a" * 19_000_000 + "'"]),
    "5,000 nested parentheses in a cell": notebook(["x = " + "(" * 5000 + ")" * 5000]),
    "a 5,000-digit number in the notebook file": '{"cells": [], "x": ' + "9" * 5000 + "}",
    "100,000 nested brackets in the notebook file": '{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}",
}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "submission.ipynb"
        for name, text in CASES.items():
            path.write_text(text)
            started = time.perf_counter()
            try:
                code = extract_student_code(path)
                kept = f"{len(code.cells)} cells kept, {len(code.skipped_cells)} cells skipped"
            except SubmissionError as error:
                kept = f"refused: {str(error)[:60]}"
            print(f"{name}: {time.perf_counter() - started:.2f} s ({kept})")


if __name__ == "__main__":
    main()
