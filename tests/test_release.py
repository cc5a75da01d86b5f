"""The Lesson 1 assignment as nbgrader builds it: source, release, solutions."""
import ast
import os
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.assignments import ASSIGNMENTS as REGISTRY
from autograder.assignments import Assignment
from tests.conftest import RELEASE_NOTEBOOK, SOLUTION_NOTEBOOK, SOURCE_NOTEBOOK
from tests.submissions import ASSIGNMENT, ROOT

GRADED_FUNCTIONS = tuple(REGISTRY[ASSIGNMENT].functions)
SOLUTION_CELLS = GRADED_FUNCTIONS
VISIBLE_TESTS = ("test_cross_attention_shape", "test_cross_attention_rows", "test_apply_cfg_w0",
                 "test_apply_cfg_w1", "test_cfg_norms", "test_generate_guidance_sweep")


def read(path):
    return nbformat.read(path, as_version=4)


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def cells_by_id(notebook):
    return {nbgrader_meta(c)["grade_id"]: c for c in notebook.cells if "grade_id" in nbgrader_meta(c)}


def split_solution_lines(notebook):
    """(lines inside solution regions, lines outside them), stripped."""
    inside_lines, outside_lines = [], []
    for cell in notebook.cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            else:
                (inside_lines if inside else outside_lines).append(line.strip())
    return inside_lines, outside_lines


ASSIGNMENTS = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
LESSON2 = "text_conditioning_clip"
SMALL_LESSON2 = {"T2I_SMALL": "1", "T2I_DATASET": "digits"}   # outputs are not compared: run it quickly


def notebooks(folder):
    return sorted((ROOT / folder).rglob("*.ipynb"))


@pytest.fixture
def environment(monkeypatch):
    """Sets environment variables for notebook kernels started in the test, and restores them after."""
    return monkeypatch.setenv


def test_both_lessons_are_assignments():
    assert {LESSON2, ASSIGNMENT} <= set(ASSIGNMENTS)
    assert ASSIGNMENTS == sorted(REGISTRY), "every exercises/ folder is a declared assignment and back"


@pytest.mark.quick
def test_solution_cells_are_stubs_in_the_release():
    released = cells_by_id(read(RELEASE_NOTEBOOK))
    for grade_id in SOLUTION_CELLS:
        source = released[grade_id].source
        assert "raise NotImplementedError" in source and "BEGIN SOLUTION" not in source, grade_id
        assert nbgrader_meta(released[grade_id])["solution"] is True
    for function in GRADED_FUNCTIONS:  # the signature and docstring stay so students know the contract
        assert re.search(rf"^def {function}\(", released[function].source, re.M)


def released_texts():
    """Every file students get, as text: the library's wheel member by member."""
    for path in sorted((ROOT / "release").rglob("*")):
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                yield from (wheel.read(name).decode() for name in wheel.namelist())
        elif path.is_file():
            yield path.read_text()


def test_release_contains_no_solution_code_and_no_hidden_checks():
    release_text = "\n".join(released_texts())
    solution, given = [], []
    for source in notebooks("exercises"):
        inside, outside = split_solution_lines(read(source))
        solution += inside
        given += outside
    secret = [line for line in solution if len(line) > 12 and not any(line in g for g in given)]  # given code may repeat
    assert len(secret) >= 13
    leaked = [line for line in secret if line in release_text]
    assert not leaked, leaked
    hidden_names = [name for assignment in REGISTRY.values() for name in check_markers(assignment)]
    assert len(hidden_names) >= 20
    assert not [name for name in hidden_names if name in release_text]
    assert "autograder" not in release_text


def test_every_nbgrader_cell_is_valid_and_ids_are_unique():
    validator = MetadataValidator()
    paths = notebooks("exercises") + notebooks("release") + notebooks("solutions")
    assert len(paths) == 3 * len(ASSIGNMENTS)
    for path in paths:
        notebook = read(path)
        ids = []
        for cell in notebook.cells:
            meta = nbgrader_meta(cell)
            if not meta:
                continue
            validator.validate_cell(cell)
            assert meta["schema_version"] == 3
            assert re.fullmatch(r"[A-Za-z0-9_-]+", meta["grade_id"])
            if meta["grade"] and meta["solution"]:   # a written answer, graded by hand
                assert cell.cell_type == "markdown" and meta["points"] > 0 and not meta["locked"]
            elif meta["grade"]:   # a visible test (worth nothing) or a hidden-check slot
                assert meta["locked"] and cell.cell_type == "code"
                assert (meta["points"] > 0) == meta["grade_id"].startswith("hidden_"), meta["grade_id"]
            ids.append(meta["grade_id"])
        assert len(ids) == len(set(ids)), path
        if path.stem == ASSIGNMENT:
            assert set(VISIBLE_TESTS) <= set(ids) and set(SOLUTION_CELLS) <= set(ids)
        else:
            lesson2 = REGISTRY[LESSON2]
            assert set(lesson2.functions) | set(lesson2.visible_tests) <= set(ids)


def check_markers(assignment: Assignment) -> dict[str, float]:
    """name -> points of every @check in the assignment's checks folder, read from the source."""
    markers = {}
    for check_file in sorted(assignment.checks_dir.glob("test_*.py")):
        for node in ast.walk(ast.parse(check_file.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check":
                points = next((k.value.value for k in node.keywords if k.arg == "points"), 1)
                markers[node.args[0].value] = points
    return markers


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_solution_region_is_graded_by_hidden_checks(name):
    assignment = REGISTRY[name]
    markers = check_markers(assignment)
    regions = 0
    for cell in read(ROOT / "exercises" / name / assignment.notebook).cells:
        meta = nbgrader_meta(cell)
        if not meta.get("solution"):
            continue
        regions += 1
        if cell.cell_type == "markdown":
            assert assignment.manual.get(meta["grade_id"]) == meta["points"], (
                f"written answer {meta['grade_id']} is not declared in autograder/assignments with its points")
            continue
        defined = {node.name for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)}
        graded = defined & set(assignment.functions)
        if meta["grade_id"] in assignment.experiments:
            assert not graded and meta["grade_id"] in assignment.definitions_only   # never run for grading
            continue
        assert graded, f"solution cell {meta['grade_id']} defines no graded function: give it hidden checks"
        for function in graded:
            points = sum(p for check_name, p in markers.items() if check_name.startswith(f"{function}: "))
            assert points == assignment.functions[function], (function, points)
    assert regions == len(assignment.functions) + len(assignment.manual) + len(assignment.experiments)
    assert sum(markers.values()) == assignment.points


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_cells_run_for_their_definitions_only_are_cells_of_the_release(name):
    # Each must name a locked cell or a free answer cell (no graded function) of the release, or a
    # renamed model load would run for real.
    assignment = REGISTRY[name]
    from autograder.intake.submission import locked_cells

    locked = locked_cells(assignment.release_notebook)
    free = {grade_id for grade_id, cell in cells_by_id(read(assignment.release_notebook)).items()
            if nbgrader_meta(cell).get("solution") and not nbgrader_meta(cell).get("grade")
            and grade_id not in assignment.functions}
    assert set(assignment.definitions_only) <= locked.keys() | free
    assert "setup" in locked and not any(grade_id in locked for grade_id in assignment.functions)


def test_locked_cells_without_metadata_are_recognised_by_their_text(tmp_path):
    # Cells pasted into a fresh notebook lose nbgrader's metadata; the model load is still recognised
    # (else the run would import diffusers and try to download a model for every such student).
    from autograder.intake.submission import extract_student_code, locked_cells
    from tests.submissions import CORRECT, build

    assignment = REGISTRY["text_conditioning_guidance"]
    path = build(CORRECT["no_metadata_cells_reversed"], tmp_path / assignment.notebook)
    code = extract_student_code(path, locked_cells(assignment.release_notebook), assignment.definitions_only)
    run = "".join(cell.source for cell in code.cells)
    assert "def load_pipeline" in run and "= load_pipeline(" not in run and "annotate(" not in run
    assert all(code.defines(name) for name in assignment.functions)


def test_a_cell_run_for_its_definitions_keeps_them_where_the_student_wrote_them():
    from autograder.intake.submission import definitions_of

    cell = """import torch
PROMPT = "a red fox in the snow"
SCALES = [1, 3, 7.5]
pipe = load_pipeline(MODEL_ID)

@functools.cache
def sweep(pipe, prompt=PROMPT):
    return [pipe(prompt, guidance_scale=w) for w in SCALES]

for w in SCALES:
    print(w)
images = sweep(pipe)
plt.show()
"""
    kept = definitions_of(cell)
    assert kept.splitlines()[:3] == cell.splitlines()[:3] and kept.splitlines()[3] == ""
    assert kept.splitlines()[5:8] == cell.splitlines()[5:8]   # the decorated function, on its own lines
    assert "load_pipeline" not in kept and "print" not in kept and "images" not in kept and "show" not in kept
    assert definitions_of("x = 1; load()\ndef f():\n    return x\n") == "x = 1\ndef f():\n    return x\n"
    assert definitions_of("def broken(:\n") == ""


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_what_reduced_cells_leave_out_is_not_read_by_cells_that_run(name):
    # A name that only the left-out part of a reduced cell assigns (`pipe = load_pipeline(...)`) must not
    # be read by a cell that runs in full (solution cells included), or the run would differ from the
    # student's kernel.
    from autograder.intake.submission import definitions_of

    assignment = REGISTRY[name]

    def stored(source):
        tree = ast.parse(source)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        return names | {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}

    left_out = {}
    for cell in read(ROOT / "solutions" / name / assignment.notebook).cells:
        if cell.cell_type != "code":
            continue
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in assignment.definitions_only:
            left_out.update(dict.fromkeys(stored(cell.source) - stored(definitions_of(cell.source)), grade_id))
            continue
        tree = ast.parse(cell.source)
        parameters = {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}   # a parameter is no global
        read_here = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        missing = {n: left_out[n] for n in read_here - stored(cell.source) - parameters if n in left_out}
        assert not missing, f"cell {grade_id} reads names that only the left-out part of a cell defines: {missing}"


@pytest.mark.quick
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_gradebook_slots_carry_the_hidden_points(name):
    assignment = REGISTRY[name]
    for folder in ("exercises", "release"):
        cells = cells_by_id(read(ROOT / folder / name / assignment.notebook))
        for function, points in assignment.functions.items():
            slot = cells[Assignment.slot_id(function)]
            assert slot.cell_type == "code" and nbgrader_meta(slot)["points"] == points
        visible = [c for grade_id, c in cells.items() if grade_id.startswith("test_")]
        assert visible and all(nbgrader_meta(c)["points"] == 0 for c in visible)
        answers = [cells[grade_id] for grade_id in assignment.manual]
        if folder == "release":
            assert all(c.source.strip() == "YOUR ANSWER HERE" for c in answers)


def test_the_packages_students_may_import_are_stated_and_installed():
    import importlib.util

    from autograder.assignments import STUDENT_PACKAGES

    setup = next(c.source for c in read(SOURCE_NOTEBOOK).cells if c.source.startswith("## Setup"))
    stated = re.findall(r"`(\w+)`", setup.split("may import", 1)[1].split("standard library", 1)[0])
    assert sorted(stated) == sorted(STUDENT_PACKAGES)
    assert all(importlib.util.find_spec(name) for name in STUDENT_PACKAGES)
    assert "einops" in (ROOT / "requirements.lock").read_text()


def test_exercises_appear_in_the_lesson_order():
    text = "\n".join(c.source for c in read(SOURCE_NOTEBOOK).cells)
    markers = ["## Exercise 1", "def self_attention", "def cross_attention", "## Exercise 2", "imshow(weights_np",
               "reshape(H, W)", "## Exercise 3", "def apply_cfg", "test_scales = [0, 1, 3, 7.5, 15]",
               "np.linspace(0, 20, 100)", "## Exercise 4", "def generate_guidance_sweep",
               "def load_pipeline", "my_scales = [1, 3, 7.5, 12, 20]", "### Reflect", "## Key takeaways"]
    positions = [text.index(marker) for marker in markers]
    assert positions == sorted(positions)


def validate(path: Path) -> dict:
    from nbgrader.validator import Validator

    return Validator().validate(str(path))


def failing_test_ids(path: Path) -> set[str]:
    """The graded code cells nbgrader's validator reports as failing (written answers aside)."""
    sources = {c.source.strip(): nbgrader_meta(c)["grade_id"] for c in read(path).cells
               if nbgrader_meta(c).get("grade") and c.cell_type == "code"}
    return {sources[entry["source"]] for entry in validate(path).get("failed", []) if entry["source"] in sources}


@pytest.mark.slow
def test_visible_tests_pass_on_the_solution():
    assert failing_test_ids(SOLUTION_NOTEBOOK) == set()


@pytest.mark.slow
def test_visible_tests_fail_on_the_released_stubs():
    assert failing_test_ids(RELEASE_NOTEBOOK) == set(VISIBLE_TESTS)


@pytest.mark.slow
def test_solution_runs_top_to_bottom_offline_with_a_tiny_pipeline(tiny_pipeline_dir, tmp_path):
    from nbclient import NotebookClient

    notebook = read(SOLUTION_NOTEBOOK)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    previous = {k: os.environ.get(k) for k in ("SD_MODEL_ID", "HF_HUB_OFFLINE", "MPLBACKEND")}
    os.environ.update(SD_MODEL_ID=str(tiny_pipeline_dir), HF_HUB_OFFLINE="1",
                      MPLBACKEND="module://matplotlib_inline.backend_inline")
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key, value in previous.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[0]
    text = "".join(o.get("text", "") for o in cells_by_id(notebook)["load_pipeline"].outputs)
    assert "Could not load" not in text
    sweep = cells_by_id(notebook)["guidance_sweep_images"]
    assert any("image/png" in o.get("data", {}) for o in sweep.outputs), "the five images were not shown"
    plots = [c for c in notebook.cells if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert len(plots) >= 4   # heatmap, token maps, norm curve, guidance sweep


@pytest.mark.slow
def test_a_missing_model_falls_back_to_the_labelled_stand_in_in_one_line(tmp_path):
    from tests.student_release import errors_of, execute, images_in, seconds_of, text_of

    notebook = read(SOLUTION_NOTEBOOK)
    keep = {"setup", "generate_guidance_sweep", "load_pipeline", "guidance_sweep_images"}
    notebook.cells = [c for c in notebook.cells if nbgrader_meta(c).get("grade_id") in keep]
    # A folder that does not exist and the hub not ruled out: the loader asks the hub (here: no network).
    outputs = execute(notebook, tmp_path, env={"SD_MODEL_ID": str(tmp_path / "no-such-model")},
                      unset=("HF_HUB_OFFLINE",))
    assert not errors_of(outputs)
    said = text_of(outputs, "load_pipeline").strip().splitlines()
    assert len(said) == 1 and said[0].startswith("Could not load") and "random-weight stand-in" in said[0]
    assert seconds_of(notebook, "load_pipeline") < 10
    assert images_in(outputs, "guidance_sweep_images") == 1


@pytest.mark.slow
def test_the_main_job_leaves_a_clean_clone_clean(tmp_path):
    import subprocess
    import sys

    clone = tmp_path / "clone"
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    for name in tracked:   # this tree as it is now, committed in the clone (a developer's run may be uncommitted)
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    subprocess.run([*git, "add", "-A"], cwd=clone, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "tree", "--allow-empty"], cwd=clone, check=True)
    env = {**os.environ, "PYTHONPATH": str(clone)}

    def main_job_step(*args):
        return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=900)

    checked = main_job_step("release", "--check")
    assert checked.returncode == 0, checked.stderr[-2000:]
    # finn's functions hang, and four of his notebook's cells with them: short call and cell timeouts (main.sh
    # passes options through) spare a minute of waiting (his submission alone took 48 s with 10 s cells)
    graded = main_job_step("grade", "samples/submitted", "--out", "grading-output", "--quiet", "--workers", "2",
                           "--call-timeout", "3", "--cell-timeout", "3")
    assert graded.returncode == 0, graded.stderr[-2000:]
    assert "ada " in graded.stdout and (clone / "grading-output" / ASSIGNMENT / "grades.csv").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    assert status == "", status
    # The check is not blind: an edited source makes it fail, still without touching release/.
    source = clone / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source.write_text(source.read_text().replace("Nothing here is new theory", "No new theory here"))
    stale = main_job_step("release", "--check", ASSIGNMENT)   # the lesson edited; the first check covered both
    assert stale.returncode == 1 and f"release/{ASSIGNMENT}/{ASSIGNMENT}.ipynb" in stale.stderr
    assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True,
                          text=True).stdout.strip() == f"M exercises/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"


@pytest.mark.quick
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_students_see_course_text_not_grader_plumbing(name):
    """Every stub names its exercise; no released cell shows nbgrader's execution marker or how the slots work."""
    assignment = REGISTRY[name]
    notebook = read(assignment.release_notebook)
    for cell in notebook.cells:
        assert "NBGRADER" not in cell.source and "autograde" not in cell.source, cell.source[:200]
        grade_id = nbgrader_meta(cell).get("grade_id")
        if cell.cell_type == "code" and nbgrader_meta(cell).get("solution"):
            assert f"{grade_id}: write your solution here" in cell.source, grade_id
    for function, points in assignment.functions.items():
        slot = cells_by_id(notebook)[Assignment.slot_id(function)].source
        assert f'hidden_checks("{function}", points={points:g})' in slot and "Nothing to do here" in slot


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_plain_nbgrader_autograde_gives_the_slots_nothing(name, tmp_path):
    """nbgrader autograde without the course's configuration runs the notebook in its own kernel and gives an
    autograder-test cell its points whenever it runs without error. Each slot cell must fail there, so that only
    the course grader's scores (written into the slots) can award the hidden checks' points."""
    from nbgrader.preprocessors import Execute
    from nbgrader.utils import determine_grade, setenv

    notebook = read(REGISTRY[name].release_notebook)
    slots = {Assignment.slot_id(f) for f in REGISTRY[name].functions}
    notebook.cells = [c for c in notebook.cells if nbgrader_meta(c).get("grade_id") in {"setup", *slots}]
    with setenv(NBGRADER_EXECUTION="autograde"):   # as nbgrader's Autograde converter runs its Execute step
        Execute(timeout=300, allow_errors=True).preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    cells = cells_by_id(notebook)
    assert not [o for o in cells["setup"].outputs if o.output_type == "error"]
    assert {slot: determine_grade(cells[slot])[0] for slot in slots} == dict.fromkeys(slots, 0)
    # Anywhere else (a student's run, nbgrader validate) the same cells pass silently.
    with setenv(NBGRADER_EXECUTION="validate"):
        Execute(timeout=300, allow_errors=True).preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    cells = cells_by_id(notebook)
    assert {slot: determine_grade(cells[slot]) for slot in slots} == {
        slot: (nbgrader_meta(cells[slot])["points"],) * 2 for slot in slots}
