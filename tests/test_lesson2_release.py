"""Lesson 2 as students get it: the release folder (notebook, the student edition of text_to_image as a
wheel, requirements.txt) holds no answer (tests/test_student_release.py runs it in a fresh environment)."""
import ast
import zipfile
from pathlib import Path

import pytest

from autograder.release import student_library
from autograder.assignments import ASSIGNMENTS
from autograder.release.nbgrader_release import LOCK
from tests.student_release import errors_of, execute, text_of
from tests.test_release import SMALL_LESSON2, check_markers, failing_test_ids, nbgrader_meta, read

LESSON2 = ASSIGNMENTS["text_conditioning_clip"]
RELEASE_DIR = LESSON2.release_notebook.parent
SOLUTION = RELEASE_DIR.parent.parent / "solutions" / LESSON2.name / LESSON2.notebook
ROOT = RELEASE_DIR.parent.parent


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


def test_every_release_ships_the_current_student_library_and_its_requirements(tmp_path):
    fresh = student_library.build_wheel(tmp_path)
    for assignment in ASSIGNMENTS.values():
        folder = assignment.release_notebook.parent
        wheels = [w.read_bytes() for w in folder.glob("*.whl")]
        assert wheels == ([fresh.read_bytes()] if assignment.ships_library else []), "run `python -m autograder release`"
        assert (folder / "requirements.txt").read_text() == student_library.requirements(LOCK, assignment.packages)
    lesson1 = (ROOT / "release" / "text_conditioning_guidance" / "requirements.txt").read_text()
    assert "diffusers==" in lesson1 and "scikit-learn" not in lesson1 and "nbgrader" not in lesson1
    lesson2 = (RELEASE_DIR / "requirements.txt").read_text()
    assert "scikit-learn==" in lesson2 and "diffusers" not in lesson2 and "pytest" not in lesson2


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
    said = text_of(outputs, "load_clip").strip().splitlines()
    assert said[0].startswith("Could not load CLIP") and "connect to the internet once" in said[0]
    assert len(said) == 2 and said[1].startswith("embedding width")   # one line about it, then the usual line
    assert "Stand-in encoder: these numbers follow shared words" in text_of(outputs, "clip_similarity")
