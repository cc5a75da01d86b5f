"""Lesson 2 as students get it: the release folder (notebook, the student edition of text_to_image as a
wheel, requirements.txt) holds no answer, and runs in a fresh environment made only from it."""
import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.release import student_library
from autograder.assignments import ASSIGNMENTS
from autograder.release.nbgrader_release import LOCK
from tests.test_release import SMALL_LESSON2, check_markers, failing_test_ids, nbgrader_meta, read

LESSON2 = ASSIGNMENTS["text_conditioning_clip"]
RELEASE_DIR = LESSON2.release_notebook.parent
SOLUTION = RELEASE_DIR.parent.parent / "solutions" / LESSON2.name / LESSON2.notebook
ROOT = RELEASE_DIR.parent.parent
STUB_ERRORS = {"NotImplementedError", "ExerciseNotDone"}


def committed_wheel() -> Path:
    wheels = sorted(RELEASE_DIR.glob("*.whl"))
    assert [w.name for w in wheels] == [student_library.wheel_name()]
    return wheels[0]


def function_bodies(source: str, top_level_only: bool = False) -> dict[str, str]:
    """name -> the AST of its body, for the functions a module defines (comparable across formatting)."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else ast.walk(tree)
    return {node.name: ast.dump(ast.Module(body=node.body[1:] if ast.get_docstring(node) else node.body,
                                           type_ignores=[]))
            for node in nodes if isinstance(node, ast.FunctionDef)}


def test_the_release_ships_the_current_student_library(tmp_path):
    fresh = student_library.build_wheel(tmp_path)
    assert committed_wheel().read_bytes() == fresh.read_bytes(), "run `python -m autograder release` and commit"
    assert (RELEASE_DIR / "requirements.txt").read_text() == student_library.requirements(LOCK)


def test_the_student_library_holds_no_answer_and_nothing_of_the_grader():
    with zipfile.ZipFile(committed_wheel()) as wheel:
        sources = {name: wheel.read(name).decode() for name in wheel.namelist() if name.endswith(".py")}
    assert set(sources) == {f"text_to_image/{name}" for name in student_library.package_files()}
    assert "text_to_image/reference.py" not in sources and "text_to_image/__main__.py" not in sources
    text = "\n".join(sources.values())
    assert "autograder" not in text
    assert not [name for name in check_markers(LESSON2) if name in text]
    references = function_bodies((ROOT / "text_to_image" / "reference.py").read_text(), top_level_only=True)
    shipped = {body for source in sources.values() for body in function_bodies(source).values()}
    assert set(references) == set(LESSON2.functions)
    assert not [name for name, body in references.items() if body in shipped]


def test_the_sandbox_mounts_the_student_library(tmp_path):
    student_library.write_tree(tmp_path)
    mounted = {str(p.relative_to(tmp_path / "text_to_image")) for p in (tmp_path / "text_to_image").rglob("*.py")}
    assert mounted == set(student_library.package_files()) and "reference.py" not in mounted


@pytest.mark.slow
def test_visible_tests_pass_on_the_solution_and_fail_on_the_stubs(monkeypatch, tiny_clip_dir):
    for key, value in {**SMALL_LESSON2, "CLIP_MODEL": str(tiny_clip_dir)}.items():
        monkeypatch.setenv(key, value)
    assert failing_test_ids(SOLUTION) == set()
    assert failing_test_ids(LESSON2.release_notebook) == set(LESSON2.visible_tests)


def execute(notebook, cwd: Path, kernel: str = "python3", env: dict | None = None):
    """Runs every cell in a real kernel, carrying on after errors; returns {grade_id: outputs}."""
    from nbclient import NotebookClient

    previous = dict(os.environ)
    os.environ.update(env or {})
    try:
        NotebookClient(notebook, timeout=900, kernel_name=kernel, allow_errors=True,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(previous)
    return {nbgrader_meta(c).get("grade_id"): c.outputs for c in notebook.cells if c.cell_type == "code"}


def errors_of(outputs: dict) -> dict[str, str]:
    return {grade_id: o["ename"] for grade_id, cell in outputs.items() for o in cell if o.output_type == "error"}


def text_of(outputs, grade_id):
    return "".join(o.get("text", "") for o in outputs[grade_id])


@pytest.mark.slow
def test_the_solution_runs_top_to_bottom_offline_with_a_tiny_clip(tiny_clip_dir, tmp_path):
    outputs = execute(read(SOLUTION), tmp_path, env={**SMALL_LESSON2, "CLIP_MODEL": str(tiny_clip_dir)})
    assert not errors_of(outputs)
    assert "Could not load CLIP" not in text_of(outputs, "load_clip")
    assert "training data: digits" in text_of(outputs, "load_data")
    assert "Shapes, rows and the mask are right." in text_of(outputs, "test_multi_head_cross_attention")
    assert "in one call per step" in text_of(outputs, "test_euler_cfg_sample")
    for grade_id in ("clip_similarity", "token_attention_demo", "show_data", "loss_plot", "sample_classes",
                     "sample_scales", "sample_unseen"):
        assert any("image/png" in o.get("data", {}) for o in outputs[grade_id]), grade_id


@pytest.mark.slow
def test_a_missing_clip_is_explained_and_the_stand_in_says_what_it_cannot_show(monkeypatch, tmp_path):
    notebook = read(SOLUTION)
    notebook.cells = [c for c in notebook.cells if nbgrader_meta(c).get("grade_id") in {"setup", "load_clip",
                                                                                          "clip_similarity"}]
    outputs = execute(notebook, tmp_path, env={"CLIP_MODEL": str(tmp_path / "no-clip-here")})
    assert not errors_of(outputs)
    assert "Could not load CLIP" in text_of(outputs, "load_clip") and "connect to the internet once" in text_of(
        outputs, "load_clip")
    assert "Stand-in encoder: these numbers follow shared words" in text_of(outputs, "clip_similarity")


@pytest.fixture(scope="module")
def student_environment(tmp_path_factory):
    """A fresh virtual environment holding only what the release asks students to install, with a kernel."""
    root = tmp_path_factory.mktemp("student-env")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(RELEASE_DIR / "requirements.txt")],
                   check=True, capture_output=True, timeout=1800)
    kernels = root / "jupyter"
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(kernels), "--name", "student"],
                   check=True, capture_output=True)
    return {"python": python, "jupyter_path": str(kernels / "share" / "jupyter")}


@pytest.mark.slow
def test_the_release_folder_runs_in_a_fresh_environment_made_from_what_students_get(student_environment, tmp_path):
    folder = tmp_path / "my-assignment"
    shutil.copytree(RELEASE_DIR, folder)
    python = student_environment["python"]
    probe = subprocess.run([str(python), "-c", "import text_to_image"], capture_output=True, text=True, cwd=folder)
    assert probe.returncode != 0   # not installed yet: the notebook's first cell installs it from the wheel
    outputs = execute(read(folder / LESSON2.notebook), folder, kernel="student",
                      env={**SMALL_LESSON2, "JUPYTER_PATH": student_environment["jupyter_path"], "HF_HUB_OFFLINE": "1"})
    installed = subprocess.run([str(python), "-m", "pip", "show", "-f", student_library.DISTRIBUTION],
                               capture_output=True, text=True)
    assert installed.returncode == 0 and "text_to_image/reference.py" not in installed.stdout
    errors = errors_of(outputs)
    assert set(errors.values()) <= STUB_ERRORS, errors               # graded cells left as stubs fail as stubs
    assert set(LESSON2.visible_tests) <= set(errors)                 # every visible test meets a stub
    ran = {"setup", "load_clip", "clip_similarity", "load_data", "build_model", "captions_demo", "show_data",
           "null_text"}
    assert not ran & set(errors), errors                             # nothing else fails
    assert "Continuing with the random-weight stand-in" in text_of(outputs, "load_clip")
    stub_messages = json.dumps([o for cell in outputs.values() for o in cell if o.output_type == "error"])
    assert "multi_head_cross_attention: write your solution here" in stub_messages   # each stub names its exercise
