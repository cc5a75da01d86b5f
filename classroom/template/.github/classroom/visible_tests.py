"""Runs this repository's notebook in a Jupyter kernel and reports its visible tests to GitHub Classroom.

Written by the course's autograder (`python -m autograder classroom-template`); what it reads is in
assignment.json beside it. Each visible test cell that runs without an error earns the points of the
hidden checks that ask the same thing. The other points come from the hidden checks, which run in your
instructor's grader and are reported to this repository when it has graded your latest commit.
The result is the grading reporter's format (classroom-resources/autograding-grading-reporter):
base64 JSON in the step output `result`.
"""
import base64
import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

CONFIG = json.loads(Path(__file__).with_name("assignment.json").read_text())


def find_notebook(root: Path) -> Path | None:
    found = [p for p in root.rglob(CONFIG["notebook"]) if not {".git", ".venv"} & set(p.parts)]
    return min(found, key=lambda p: (len(p.parts), str(p)), default=None)


def error_of(cell) -> str | None:
    """Why a test cell did not pass, or None if it ran cleanly."""
    if cell.get("execution_count") is None:
        return "this cell did not run (an earlier cell timed out or the kernel died)"
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"[:1000]
    return None


def run(path: Path) -> dict:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in CONFIG["skip"]:
            cell.source = ""   # model loads and figures: not needed by any visible test
    os.environ.setdefault("HF_HUB_OFFLINE", "1")   # no visible test needs a downloaded model
    client = NotebookClient(notebook, timeout=CONFIG["cell_timeout"], allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.monotonic()
    try:
        client.execute()
    except (CellTimeoutError, DeadKernelError) as error:
        print(f"The notebook run stopped: {type(error).__name__}", file=sys.stderr)
    by_id = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell for cell in notebook.cells}
    tests = []
    for grade_id, points in CONFIG["visible_tests"].items():
        cell = by_id.get(grade_id)
        problem = "this test cell is missing from the notebook" if cell is None else error_of(cell)
        tests.append({"name": grade_id, "status": "fail" if problem else "pass", "score": 0 if problem else points,
                      "message": problem or "", "line_no": 0, "test_code": "", "filename": path.name})
    return {"version": 1, "status": "pass" if all(t["status"] == "pass" for t in tests) else "fail",
            "max_score": CONFIG["points"], "tests": tests, "execution_time": f"{time.monotonic() - started:.1f}s"}


def main() -> int:
    path = find_notebook(Path.cwd())
    if path is None:
        tests = [{"name": name, "status": "error", "score": 0, "line_no": 0, "test_code": "",
                  "message": f"no {CONFIG['notebook']} in this repository"} for name in CONFIG["visible_tests"]]
        result = {"version": 1, "status": "error", "max_score": CONFIG["points"], "tests": tests}
    else:
        result = run(path)
    earned = sum(t["score"] for t in result["tests"])
    print(f"Visible tests: {earned:g} of the {sum(CONFIG['visible_tests'].values()):g} points they stand for. "
          f"The other {CONFIG['points'] - sum(CONFIG['visible_tests'].values()):g} of {CONFIG['points']:g} come from "
          "the hidden checks, reported here when your instructor's grader has graded this commit.")
    encoded = base64.b64encode(json.dumps(result).encode()).decode()
    if os.environ.get("GITHUB_OUTPUT"):
        with open(os.environ["GITHUB_OUTPUT"], "a") as stream:
            stream.write(f"result={encoded}\n")
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
