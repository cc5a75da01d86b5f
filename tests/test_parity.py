"""The grader gives what the student's own kernel gives: notebooks written in the styles students use
pass the visible tests in a real Jupyter kernel, and then get full marks; top-level code that would
stop or flood "Run All" costs nothing to the functions around it."""
import json
import os
import subprocess
import sys

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel

from autograder.assignments import ASSIGNMENTS
from tests.submissions import ASSIGNMENT, PARITY, TOP_LEVEL_SABOTAGE, write_corpus

FULL = ASSIGNMENTS[ASSIGNMENT].points


def visible_test(cell) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("grade") and nbgrader.get("locked") and cell.cell_type == "code"
                and not nbgrader.get("grade_id", "").startswith("hidden_"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    return {**write_corpus(folder / "parity", PARITY), **write_corpus(folder / "sabotage", TOP_LEVEL_SABOTAGE)}


@pytest.fixture(scope="module")
def kernel_runs(corpus, tmp_path_factory):
    """Each parity notebook run cell by cell in one real IPython kernel (its namespace reset between
    notebooks): grade_id of every visible test -> whether it passed. The cells the grader runs only for
    their definitions are left out here too (the model cannot be downloaded, the figures are not needed)."""
    heavy = set(ASSIGNMENTS[ASSIGNMENT].definitions_only)
    workdir = tmp_path_factory.mktemp("kernel-cwd")
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(workdir),
                                       env={**os.environ, "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"})
    outcomes = {}
    try:
        for name in PARITY:
            client.execute_interactive("%reset -f", timeout=60)
            notebook = nbformat.read(corpus[name], as_version=4)
            passed = {}
            for cell in notebook.cells:
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if cell.cell_type != "code" or grade_id in heavy:
                    continue
                reply = client.execute_interactive(cell.source, timeout=120, output_hook=lambda message: None)
                if visible_test(cell):
                    passed[grade_id] = reply["content"]["status"] == "ok"
            outcomes[name] = passed
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return outcomes


@pytest.fixture(scope="module")
def graded(corpus, tmp_path_factory, tiny_pipeline_dir):
    out = tmp_path_factory.mktemp("graded")
    folders = sorted({str(path.parent.parent) for path in corpus.values()})
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", *folders, "--out", str(out), "--workers", "2",
                          "--call-timeout", "10", "--cell-timeout", "5", "--sandbox", "bwrap", "--quiet",
                          "--sd-model", str(tiny_pipeline_dir), "--sd-device", "cpu"],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    return {name: json.loads((out / ASSIGNMENT / name / "results.json").read_text()) for name in corpus}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_each_style_passes_the_visible_tests_in_a_real_kernel(kernel_runs, name):
    passed = kernel_runs[name]
    assert len(passed) >= 6 and all(passed.values()), {k: v for k, v in passed.items() if not v}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_each_style_gets_full_marks(graded, name):
    results = graded[name]
    lost = [(t["name"], t.get("output", "")[:300]) for t in results["tests"] if t["score"] < t["max_score"]]
    assert results["score"] == FULL, lost


def test_a_cell_that_raises_is_named_and_the_rest_still_runs(graded):
    output = graded["a_cell_errors_before_the_definition"]["output"]
    assert "raised an error when the notebook was run from the top" in output
    assert "NameError: name 'undefined_experiment_result' is not defined" in output


@pytest.mark.parametrize("name", sorted(TOP_LEVEL_SABOTAGE))
def test_top_level_sabotage_costs_the_functions_around_it_nothing(graded, name):
    results = graded[name]
    assert results["score"] == FULL, [t["name"] for t in results["tests"] if t["score"] < t["max_score"]]


def test_a_cell_that_ends_or_hangs_the_run_is_left_out_and_named(graded):
    exit_note = graded["exit_in_a_cell"]["output"]
    assert "was left out of the grading run" in exit_note and "os._exit" in exit_note
    loop_note = graded["endless_loop_in_a_cell"]["output"]
    assert "was left out of the grading run" in loop_note and "longer than 5 s" in loop_note
