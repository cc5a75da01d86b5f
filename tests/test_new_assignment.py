"""A third lesson added exactly as docs/adding-an-assignment.md says, in a copy of the course: its two
grader files taken from the page's code blocks, its source notebook built from the page's table,
released with real nbgrader and graded end to end, with no other file of the grader edited."""
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "adding-an-assignment.md"
NAME = "my_lesson"

SOLUTION = '''def normalize_rows(x):
    """Divide every row of x by its sum, so that each row sums to one."""
    ### BEGIN SOLUTION
    return x / x.sum(dim=-1, keepdim=True)
    ### END SOLUTION'''


def guide_files() -> dict[str, str]:
    """The page's Python blocks whose first line names the file they are: {path: text}."""
    files = {}
    for block in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S):
        first, _, rest = block.partition("\n")
        if first.startswith("# autograder/"):
            files[first[2:].strip()] = rest
    return files


def cell(kind: str, source: str, grade_id: str, *, grade=False, solution=False, locked=False, points=None):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return make(source, metadata={"nbgrader": meta})


def source_notebook() -> nbformat.NotebookNode:
    """The cells the guide's table asks for, one of each kind."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# My Lesson\nWrite `normalize_rows`, then answer the question."),
        cell("code", "import os\n\nimport torch", "setup", locked=True),
        cell("code", SOLUTION, "normalize_rows", solution=True),
        cell("code", "x = torch.rand(2, 3) + 0.1\nassert torch.allclose(normalize_rows(x).sum(-1), torch.ones(2))",
             "test_normalize_rows", grade=True, locked=True, points=0),
        cell("code", "# Hidden checks for normalize_rows(): 3 points, run when your notebook is graded.\n"
                     'assert os.environ.get("NBGRADER_EXECUTION") != "autograde"',
             "hidden_normalize_rows", grade=True, locked=True, points=3),
        cell("markdown", "Dividing by the row sum keeps the proportions.", "answer_reflection",
             grade=True, solution=True, points=1),
    ]
    return notebook


def with_function(notebook_path: Path, body: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(notebook_path, as_version=4)
    for code in notebook.cells:
        if code.metadata.get("nbgrader", {}).get("grade_id") == "normalize_rows":
            code.source = f"def normalize_rows(x):\n    {body}"
    return notebook


@pytest.mark.slow
def test_a_third_lesson_added_as_the_guide_says_is_released_and_graded(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "autograder", course / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("nbgrader_config.py", "requirements.lock"):
        shutil.copy(ROOT / name, course)
    before = {p.relative_to(course): p.read_bytes() for p in (course / "autograder").rglob("*") if p.is_file()}

    files = guide_files()
    assert set(files) == {f"autograder/assignments/{NAME}/__init__.py",
                          f"autograder/assignments/{NAME}/checks/test_normalize_rows.py"}, files.keys()
    for path, text in files.items():
        (course / path).parent.mkdir(parents=True, exist_ok=True)
        (course / path).write_text(text)
    (course / "autograder" / "assignments" / NAME / "checks" / "__init__.py").write_text("")
    (course / "exercises" / NAME).mkdir(parents=True)
    nbformat.write(source_notebook(), course / "exercises" / NAME / f"{NAME}.ipynb")
    changed = [p for p, data in before.items() if (course / p).read_bytes() != data]
    assert not changed, "adding a lesson edited the grader"

    env = {**os.environ, "PYTHONPATH": str(course)}

    def autograder(*args):
        done = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=course, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    assert NAME in autograder("grade", "--help")   # the CLI offers it as --assignment without being told
    autograder("release", NAME)
    released = course / "release" / NAME / f"{NAME}.ipynb"
    assert "NotImplementedError" in released.read_text() and "BEGIN SOLUTION" not in released.read_text()

    submitted = course / "submitted"
    notebooks = {
        "ada": nbformat.read(course / "solutions" / NAME / f"{NAME}.ipynb", as_version=4),
        "bo": nbformat.read(released, as_version=4),                                       # the stub
        "cy": with_function(released, "return torch.softmax(x, dim=-1)"),                  # rows sum to 1 only
    }
    for student, notebook in notebooks.items():
        (submitted / student / NAME).mkdir(parents=True)
        nbformat.write(notebook, submitted / student / NAME / f"{NAME}.ipynb")
    table = autograder("grade", "submitted", "--out", "graded", "--workers", "2", "--quiet")
    assert "My Lesson" in table

    rows = {r["student"]: r for r in csv.DictReader((course / "graded" / NAME / "grades.csv").open())}
    scores = {s: (r["normalize_rows: every row sums to one"], r["normalize_rows: every row keeps its proportions"],
                  r["total"], r["max_total"], r["manual_max"]) for s, r in rows.items()}
    assert scores == {"ada": ("1", "2", "3", "3", "1"), "bo": ("0", "0", "0", "3", "1"),
                      "cy": ("1", "0", "1", "3", "1")}
