"""A release folder as a student gets it: a fresh virtual environment made only from its requirements.txt, its
notebook run there in a real kernel, with or without the solutions filled in. Shared by both lessons' tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from tests.test_release import nbgrader_meta, read


def fresh_environment(requirements: Path, root: Path) -> dict:
    """A new venv under `root` holding only `requirements` (pip's cache keeps repeated builds cheap) and a
    kernel named "student" for it; {"python", "jupyter_path", "seconds"}."""
    started = time.monotonic()
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
                   check=True, capture_output=True, timeout=1800)
    kernels = root / "jupyter"
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(kernels), "--name", "student"],
                   check=True, capture_output=True)
    return {"python": python, "jupyter_path": str(kernels / "share" / "jupyter"),
            "seconds": time.monotonic() - started}


def copy_release(release_dir: Path, destination: Path) -> Path:
    """The assignment's folder as a student downloads it (the notebook, the wheel, requirements.txt)."""
    shutil.copytree(release_dir, destination)
    return destination


def with_solutions(release_notebook: Path, solution_notebook: Path) -> nbformat.NotebookNode:
    """The release notebook with every answer cell replaced by the solution's: what a student who solved it all
    runs (code cells only; the written answers change nothing that runs)."""
    notebook = read(release_notebook)
    solved = {nbgrader_meta(c).get("grade_id"): c.source for c in read(solution_notebook).cells}
    for cell in notebook.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = solved[meta["grade_id"]]
    return notebook


def execute(notebook, cwd: Path, kernel: str = "python3", env: dict | None = None, unset: tuple[str, ...] = ()):
    """Runs every cell in a real kernel, carrying on after errors; returns {grade_id: outputs}. Each cell's wall
    time lands in its metadata (seconds_of reads it)."""
    from nbclient import NotebookClient

    previous = dict(os.environ)
    os.environ.update(env or {})
    for name in unset:
        os.environ.pop(name, None)
    try:
        NotebookClient(notebook, timeout=900, kernel_name=kernel, allow_errors=True, record_timing=True,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(previous)
    return {nbgrader_meta(c).get("grade_id"): c.outputs for c in notebook.cells if c.cell_type == "code"}


def seconds_of(notebook, grade_id: str) -> float:
    from datetime import datetime

    cell = next(c for c in notebook.cells if nbgrader_meta(c).get("grade_id") == grade_id)
    timing = cell.metadata["execution"]
    start, end = (datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
                  for key in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def errors_of(outputs: dict) -> dict[str, str]:
    return {grade_id: o["ename"] for grade_id, cell in outputs.items() for o in cell if o.output_type == "error"}


def text_of(outputs, grade_id):
    return "".join(o.get("text", "") for o in outputs[grade_id])


def images_in(outputs, grade_id) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs[grade_id])
