"""Each release folder works for a student from what it holds alone: a fresh virtual environment made only from its
requirements.txt, its notebook with the solutions filled in, run top to bottom in a real kernel with no model hub
(HF_HUB_OFFLINE unset: the notebooks find out by themselves, within seconds) and no error."""
import subprocess

import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.release import student_library
from tests.student_release import copy_release, errors_of, execute, images_in, seconds_of, text_of, with_solutions
from tests.test_release import ROOT, SMALL_LESSON2

FALL_BACK_SECONDS = 10   # what a cell that needs the network may take to find out it has none and carry on


def solved_release_run(student_environment, name, tmp_path, env=None):
    assignment = ASSIGNMENTS[name]
    release_dir = assignment.release_notebook.parent
    environment = student_environment(release_dir)
    folder = copy_release(release_dir, tmp_path / "my-assignment")
    python = environment["python"]
    probe = subprocess.run([str(python), "-c", "import text_to_image"], capture_output=True, cwd=folder)
    assert probe.returncode != 0   # not installed yet: the notebook's first cell installs it from the wheel
    notebook = with_solutions(folder / assignment.notebook, ROOT / "solutions" / name / assignment.notebook)
    outputs = execute(notebook, folder, kernel="student", unset=("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"),
                      env={**(env or {}), "JUPYTER_PATH": environment["jupyter_path"]})
    installed = subprocess.run([str(python), "-m", "pip", "show", "-f", student_library.DISTRIBUTION],
                               capture_output=True, text=True)
    assert installed.returncode == 0 and "text_to_image/reference.py" not in installed.stdout
    return notebook, outputs


@pytest.mark.slow
def test_lesson_1_runs_from_its_release_folder_with_the_stand_in_pipeline(student_environment, tmp_path):
    notebook, outputs = solved_release_run(student_environment, "text_conditioning_guidance", tmp_path)
    assert not errors_of(outputs), errors_of(outputs)
    assert "Installing" not in text_of(outputs, "setup")   # nothing missing from what requirements.txt installs
    said = text_of(outputs, "load_pipeline").strip().splitlines()
    assert len(said) == 1 and said[0].startswith("Could not load nota-ai/bk-sdm-small") and "stand-in" in said[0]
    assert seconds_of(notebook, "load_pipeline") < FALL_BACK_SECONDS
    for grade_id in ("heatmap_demo", "token_maps_demo", "cfg_norm_plot", "guidance_sweep_images"):
        assert images_in(outputs, grade_id) == 1, grade_id


@pytest.mark.slow
def test_lesson_2_runs_from_its_release_folder_offline(student_environment, tmp_path):
    notebook, outputs = solved_release_run(student_environment, "text_conditioning_clip", tmp_path, env=SMALL_LESSON2)
    assert not errors_of(outputs), errors_of(outputs)
    assert "Installing" not in text_of(outputs, "setup")
    said = text_of(outputs, "load_clip").strip().splitlines()
    assert len(said) == 2 and said[0].startswith("Could not load CLIP")   # then the widths, and nothing else
    assert seconds_of(notebook, "load_clip") < FALL_BACK_SECONDS
    for grade_id in ("clip_similarity", "token_attention_demo", "show_data", "loss_plot", "sample_classes",
                     "sample_scales", "sample_unseen"):
        assert images_in(outputs, grade_id) == 1, grade_id


@pytest.mark.quick
def test_the_first_cell_installs_only_what_is_missing(tmp_path, monkeypatch):
    """prepare_environment: nothing in an environment made from requirements.txt or without the file; the whole
    file where a package is missing; on Colab only the lesson's own libraries at the grader's versions."""
    import sys
    from importlib import metadata

    from text_to_image import course

    calls = []
    monkeypatch.setattr(course.subprocess, "run", lambda command, **options: calls.append(command[3:]))
    here = {name: metadata.version(name) for name in ("torch", "numpy", "transformers")}
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pinned\n" + "".join(f"{name}=={version}\n" for name, version in here.items()))
    assert course.prepare_environment(("transformers",), requirements) == [] and calls == []
    assert course.prepare_environment(("transformers",), tmp_path / "absent.txt") == [] and calls == []

    requirements.write_text(requirements.read_text() + "no-such-package-here==1.0\n")
    assert course.prepare_environment(("transformers",), requirements) == ["-r", str(requirements)]
    assert calls == [["install", "--quiet", "-r", str(requirements)]]

    calls.clear()
    requirements.write_text(f"torch==0.0.1\nnumpy=={here['numpy']}\ntransformers==0.0.2\nno-such-package-here==1.0\n")
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert course.prepare_environment(("transformers",), requirements) == ["transformers==0.0.2"]   # not torch


@pytest.mark.quick
def test_the_lessons_share_one_installation_block():
    """Both notebooks' first cell installs the library the same way (one piece of text, checked here)."""
    from tests.test_release import cells_by_id, read

    blocks = []
    for assignment in ASSIGNMENTS.values():
        setup = cells_by_id(read(assignment.release_notebook))["setup"].source
        blocks.append(setup[setup.index("try:\n    import text_to_image"):setup.index("prepare_environment(")])
        assert "from text_to_image.course import hidden_checks, prepare_environment" in setup
    assert len(set(blocks)) == 1
