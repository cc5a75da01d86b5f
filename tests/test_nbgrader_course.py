"""A real nbgrader course holding both lessons, graded the way the README tells an instructor to.

nbgrader's own commands make the course (students in the database, generate_assignment), the
collect layout (submitted/<student>/<assignment>/ with timestamp.txt) holds five students, our
grader grades it, `nbgrader-sync` writes the scores into the gradebook, and nbgrader's export,
feedback and API are compared with our grades.csv.
"""
import base64
import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.reports import report
from tests.conftest import run_autograder
from tests.clip_submissions import CLIP_CORRECT, CLIP_MISTAKES
from tests.submissions import CLIP_ASSIGNMENT, CORRECT, HOSTILE, MISTAKES, ROOT, build, build_clip

GUIDANCE = "text_conditioning_guidance"
STUDENTS = ["ada", "ben", "chen", "dana", "eli"]
pytestmark = pytest.mark.slow


def nbgrader(course, *args, check=True):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, check=check, timeout=600)


def autograder(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def submit(course, student, assignment, build_into, when="2026-11-20 10:00:00.000000 UTC"):
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timestamp.txt").write_text(when)
    build_into(folder)
    return folder


def answered(notebook):
    """The written answers filled in, as a student who did them."""
    data = json.loads(notebook.read_text())
    for cell in data["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id", "").startswith("answer_"):
            cell["source"] = "At w = 0 the prompt is ignored; at w = 1 ... (my own words)"
    notebook.write_text(json.dumps(data))
    return notebook


def grade_options(tiny_pipeline_dir):
    return ["--workers", "2", "--call-timeout", "5", "--quiet", "--sd-model", str(tiny_pipeline_dir),
            "--sd-device", "cpu"]


def rows(path):
    with open(path, newline="") as stream:
        return {row["student"]: row for row in csv.DictReader(stream)}


@pytest.fixture(scope="module")
def course(tmp_path_factory, tiny_pipeline_dir):
    root = tmp_path_factory.mktemp("course")
    # The course's own configuration as shipped, with this course's id and grading options added.
    (root / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + (
        f'\nc.CourseDirectory.course_id = "t2i"\nc.SandboxedAutograde.grade_options = {grade_options(tiny_pipeline_dir)!r}\n'))
    for assignment in ASSIGNMENTS:
        shutil.copytree(ROOT / "exercises" / assignment, root / "exercises" / assignment)
        nbgrader(root, "generate_assignment", assignment, "--force")
    for student in STUDENTS:
        nbgrader(root, "db", "student", "add", student, f"--last-name={student.title()}")

    l1, l2 = f"{GUIDANCE}.ipynb", f"{CLIP_ASSIGNMENT}.ipynb"
    submit(root, "ada", GUIDANCE, lambda f: answered(build(CORRECT["einsum"], f / l1)))
    submit(root, "ada", CLIP_ASSIGNMENT, lambda f: build_clip(CLIP_CORRECT["reference_like"], f / l2))
    # ben: a typical mistake, plus a stray notebook beside the right one
    submit(root, "ben", GUIDANCE, lambda f: (build(MISTAKES["cfg_common_mistake"][0], f / l1),
                                             build(HOSTILE["untouched_stubs"][0], f / "Untitled.ipynb")))
    submit(root, "ben", CLIP_ASSIGNMENT, lambda f: build_clip(CLIP_MISTAKES["mask_not_dropped"][0], f / l2))
    # chen: the assignment folder holds no notebook at all
    submit(root, "chen", GUIDANCE, lambda f: (f / "notes.txt").write_text("forgot the notebook"))
    # dana: Lesson 2's (correct) notebook submitted under Lesson 1's folder
    submit(root, "dana", GUIDANCE, lambda f: build_clip(CLIP_CORRECT["reference_like"], f / l2))
    # eli: Lesson 1 correct but for the norm loop left as the stub; Lesson 2 untouched
    submit(root, "eli", GUIDANCE, lambda f: build(dataclasses.replace(CORRECT["einsum"], guidance_norms=None), f / l1))
    submit(root, "eli", CLIP_ASSIGNMENT, lambda f: build_clip(None, f / l2))

    graded = root / "graded"
    run = autograder("grade", str(root / "submitted"), "--out", str(graded), *grade_options(tiny_pipeline_dir))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    syncs = {a: autograder("nbgrader-sync", a, "--graded", str(graded), "--course-dir", str(root)) for a in ASSIGNMENTS}
    for assignment, sync in syncs.items():
        assert sync.returncode == 0, sync.stdout[-3000:] + sync.stderr[-3000:]
    nbgrader(root, "export", "--to", str(root / "export.csv"))
    return {"root": root, "graded": graded, "run": run, "syncs": syncs}


def test_nbgraders_own_release_carries_the_library_and_requirements_students_need(course):
    for assignment in (CLIP_ASSIGNMENT, GUIDANCE):
        released = course["root"] / "release" / assignment
        ours = ROOT / "release" / assignment
        shipped = sorted(p.name for p in released.iterdir() if p.suffix in (".whl", ".txt"))
        assert shipped == sorted(p.name for p in ours.iterdir() if p.suffix in (".whl", ".txt")) and len(shipped) == 2
        for name in shipped:   # the very files the grader's own release holds
            assert (released / name).read_bytes() == (ours / name).read_bytes(), name


@pytest.mark.quick
def test_the_shipped_configuration_never_executes_student_code_in_nbgrader():
    from nbgrader.preprocessors import Execute, SaveAutoGrades
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.platforms.nbgrader_autograde import SandboxedAutograde
    from autograder.platforms.nbgrader_gradebook import course_config
    from autograder.platforms.nbgrader_slots import HiddenCheckScores, KeepReviews

    steps = PyFileConfigLoader("nbgrader_config.py", str(ROOT)).load_config().Autograde.autograde_preprocessors
    assert SandboxedAutograde in steps and Execute not in steps   # autograde and formgrader's button
    assert steps.index(KeepReviews) == steps.index(SaveAutoGrades) + 1
    synced = course_config(ROOT, ROOT / "graded").Autograde.autograde_preprocessors   # nbgrader-sync
    assert HiddenCheckScores in synced and not {SandboxedAutograde, Execute} & set(synced)


def test_every_row_has_its_student_and_assignment(course):
    graded = course["graded"]
    lesson1, lesson2 = rows(graded / GUIDANCE / "grades.csv"), rows(graded / CLIP_ASSIGNMENT / "grades.csv")
    assert set(lesson1) == set(STUDENTS)
    assert set(lesson2) == {"ada", "ben", "eli"}
    assert all(r["assignment"] == GUIDANCE for r in lesson1.values())
    assert all(r["assignment"] == CLIP_ASSIGNMENT for r in lesson2.values())
    full = ASSIGNMENTS[GUIDANCE].points
    assert (float(lesson1["ada"]["total"]), float(lesson1["ada"]["max_total"])) == (full, full)
    assert float(lesson1["ben"]["total"]) < full
    assert float(lesson1["eli"]["total"]) == full - ASSIGNMENTS[GUIDANCE].functions["guidance_norms"]
    assert float(lesson2["ada"]["total"]) == ASSIGNMENTS[CLIP_ASSIGNMENT].points
    assert float(lesson2["ben"]["total"]) == ASSIGNMENTS[CLIP_ASSIGNMENT].points - 1   # one drop_text check
    assert float(lesson2["eli"]["total"]) == 0


def test_wrong_missing_and_stray_notebooks_are_explained(course):
    lesson1 = rows(course["graded"] / GUIDANCE / "grades.csv")
    assert float(lesson1["dana"]["total"]) == 0
    assert "text_conditioning_clip.ipynb" in lesson1["dana"]["problems"]
    assert "another assignment" in lesson1["dana"]["problems"]
    assert float(lesson1["chen"]["total"]) == 0 and "no notebook was submitted" in lesson1["chen"]["problems"]
    ben = json.loads((course["graded"] / GUIDANCE / "ben" / "results.json").read_text())
    assert "Untitled.ipynb: not graded" in ben["output"]
    assert "answer_guidance_reflection" in ben["output"]   # hand-graded parts are listed, not scored


def test_nbgrader_export_equals_our_totals(course):
    with open(course["root"] / "export.csv", newline="") as stream:
        exported = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(stream)}
    compared = 0
    for assignment in ASSIGNMENTS:
        for student, ours in rows(course["graded"] / assignment / "grades.csv").items():
            theirs = exported[(assignment, student)]
            assert float(theirs["raw_score"]) == pytest.approx(float(ours["total"])), (assignment, student)
            assert float(theirs["max_score"]) == float(ours["max_total"]) + float(ours["manual_max"])
            compared += 1
    assert compared == 8


def test_gradebook_holds_autograded_scores_that_need_no_manual_grading(course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}", "t2i") as gradebook:
        submission = gradebook.find_submission(GUIDANCE, "ada")
        assert submission.timestamp is not None and submission.timestamp.year == 2026
        notebook = gradebook.find_submission_notebook(GUIDANCE, GUIDANCE, "ada")
        grades = {g.name: g for g in notebook.grades}
        for function, points in ASSIGNMENTS[GUIDANCE].functions.items():
            slot = grades[f"hidden_{function}"]
            assert (slot.auto_score, slot.max_score, slot.needs_manual_grade) == (points, points, False)
        for answer in ASSIGNMENTS[GUIDANCE].manual:   # answered: the formgrader asks for a grade
            assert grades[answer].needs_manual_grade and grades[answer].auto_score is None
        eli = {g.name: g for g in gradebook.find_submission_notebook(GUIDANCE, GUIDANCE, "eli").grades}
        assert eli["hidden_guidance_norms"].score == 0 and eli["hidden_apply_cfg"].score == 7
        for answer in ASSIGNMENTS[GUIDANCE].manual:   # left as "YOUR ANSWER HERE": nbgrader gives 0 by itself
            assert eli[answer].score == 0 and not eli[answer].needs_manual_grade


def test_formgrader_lists_the_submissions_as_autograded(course):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course["root"])
    config.CourseDirectory.course_id = "t2i"
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    submissions = {s["student"]: s for s in api.get_submissions(CLIP_ASSIGNMENT)}
    assert submissions["ada"]["autograded"] and submissions["ada"]["score"] == ASSIGNMENTS[CLIP_ASSIGNMENT].points
    assert not submissions["ada"]["needs_manual_grade"]   # Lesson 2 has no hand-graded answers


def gradebook_grades(course, assignment, student) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}", "t2i") as gradebook:
        notebook = gradebook.find_submission_notebook(assignment, assignment, student)
        return {g.name: (g.score, g.manual_score, g.needs_manual_grade) for g in notebook.grades}


def review(course, student, grade_id, score):
    """What saving a score in formgrader does."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course['root'] / 'gradebook.db'}", "t2i") as gradebook:
        grade = gradebook.find_grade(grade_id, GUIDANCE, GUIDANCE, student)
        grade.manual_score, grade.needs_manual_grade = score, False
        gradebook.db.commit()


def test_nbgraders_own_autograde_grades_in_the_sandbox_and_keeps_reviews(course):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    root, graded = course["root"], course["graded"]
    review(course, "ada", "answer_cfg_predictions", 1)
    # The command line, then formgrader's Autograde button (nbgrader's API with the course's configuration).
    nbgrader(root, "autograde", GUIDANCE, "--student", "ada", "--force")
    config = PyFileConfigLoader("nbgrader_config.py", str(root)).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    assert api.autograde(GUIDANCE, "ben", force=True)["success"]
    ada, ben = gradebook_grades(course, GUIDANCE, "ada"), gradebook_grades(course, GUIDANCE, "ben")
    functions = ASSIGNMENTS[GUIDANCE].functions
    assert {f: ada[f"hidden_{f}"][0] for f in functions} == functions   # the checks' scores, not nbgrader's zeros
    ours = rows(graded / GUIDANCE / "grades.csv")["ben"]
    apply_cfg = sum(float(v) for k, v in ours.items() if k.startswith("apply_cfg:"))
    assert ben["hidden_apply_cfg"][0] == apply_cfg < functions["apply_cfg"]
    assert ada["answer_cfg_predictions"] == (1, 1, False)   # the review stands
    # No student code ran in nbgrader's kernel: nothing but the slots carries an output.
    autograded = json.loads((root / "autograded" / "ben" / GUIDANCE / f"{GUIDANCE}.ipynb").read_text())
    with_outputs = {c["metadata"].get("nbgrader", {}).get("grade_id") for c in autograded["cells"]
                    if c["cell_type"] == "code" and c["outputs"]}
    assert with_outputs == {f"hidden_{f}" for f in functions}
    # Re-syncing keeps the review too; a grading run that fails fails nbgrader's autograde, zeroing nothing.
    sync = autograder("nbgrader-sync", GUIDANCE, "--graded", str(graded), "--course-dir", str(root), "--student",
                      "ada", "--hidden-visibility", "after_due_date")
    assert sync.returncode == 0, sync.stderr[-2000:]
    assert gradebook_grades(course, GUIDANCE, "ada") == ada
    # ... and before the due date its feedback details only what the notebook's own tests ask.
    autograded = json.loads((root / "autograded" / "ada" / GUIDANCE / f"{GUIDANCE}.ipynb").read_text())
    slots = "".join("".join(o.get("text", "")) for c in autograded["cells"] for o in c.get("outputs", []))
    assert "apply_cfg: w=1 returns the conditional prediction" in slots           # asked by a visible test
    assert "apply_cfg: the formula holds at w = 7.5 and w = 15" not in slots      # hidden until the due date
    assert "further checks are shown after the due date" in slots
    broken = nbgrader(root, "autograde", GUIDANCE, "--student", "ada", "--force",
                      "--SandboxedAutograde.grade_options=['--workers', '0']", check=False)
    assert "in the sandbox failed" in broken.stdout + broken.stderr
    assert gradebook_grades(course, GUIDANCE, "ada") == ada


def test_the_sync_refuses_grades_made_against_another_release(course):
    released = course["root"] / "release" / GUIDANCE / f"{GUIDANCE}.ipynb"
    original = released.read_text()
    notebook = json.loads(original)
    setup = next(c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "setup")
    setup["source"] = "import torch  # the course changed its set-up after grading\n"
    released.write_text(json.dumps(notebook))
    try:
        sync = autograder("nbgrader-sync", GUIDANCE, "--graded", str(course["graded"]), "--course-dir",
                          str(course["root"]), "--student", "ada")
    finally:
        released.write_text(original)
    assert sync.returncode == 2 and "locked cells differ" in sync.stdout, sync.stdout + sync.stderr


def slot_checks(autograded_notebook: Path) -> dict:
    """The per-check lines nbgrader's slot cells hold: {check name: score}."""
    checks = {}
    for cell in json.loads(autograded_notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                mark = next((m for m in report.OUTCOME_MARK.values() if line.startswith(m + " ")), None)
                if mark and line.endswith(")"):
                    name, points = line[len(mark) + 1:].rsplit(" (", 1)
                    checks[name] = float(points.split("/")[0])
    return checks


def test_four_ways_of_grading_give_the_same_checks(course, autograder_root, others_can_run_python, tmp_path,
                                                   tiny_pipeline_dir):
    """The same submissions graded locally, through the unpacked Gradescope bundle, as the Classroom grader
    workflow grades its clones, and into nbgrader's gradebook: the same score for every check."""
    from tests.test_classroom import commit

    root, graded = course["root"], course["graded"]
    students = ["ada", "ben", "eli"]   # correct; a typical mistake; one function left as the stub
    notebooks = {s: root / "submitted" / s / GUIDANCE / f"{GUIDANCE}.ipynb" for s in students}
    local = {s: {c["name"]: c["score"] for c in json.loads((graded / GUIDANCE / s / "outcome.json").read_text())
                 ["checks"]} for s in students}
    assert len({tuple(v.values()) for v in local.values()}) == 3   # three different results to agree on

    sync = autograder("nbgrader-sync", GUIDANCE, "--graded", str(graded), "--course-dir", str(root))
    assert sync.returncode == 0, sync.stdout[-2000:]
    for student in students:
        source = nbformat.read(notebooks[student], as_version=4)
        commit(tmp_path / "clones" / student)   # a repository, as Classroom makes it
        nbformat.write(source, tmp_path / "clones" / student / f"{GUIDANCE}.ipynb")
        commit(tmp_path / "clones" / student, message="my work")
    run = autograder("grade", str(tmp_path / "clones"), "--assignment", GUIDANCE, "--out", str(tmp_path / "classroom"),
                     *grade_options(tiny_pipeline_dir))
    assert run.returncode == 0, run.stderr[-2000:]
    payloads = autograder("classroom-payloads", str(tmp_path / "classroom"), "--assignment", GUIDANCE, "--clones",
                          str(tmp_path / "clones"), "--outbox", str(tmp_path / "outbox"), "--details", "visible")
    assert payloads.returncode == 0, payloads.stderr[-2000:]
    for student in students:
        body = json.loads((tmp_path / "outbox" / f"{student}.json").read_text())
        classroom = {t["name"]: t["score"] for t in json.loads(base64.b64decode(body["client_payload"]["result"]))
                     ["tests"]}
        nbgrader_slots = slot_checks(root / "autograded" / student / GUIDANCE / f"{GUIDANCE}.ipynb")
        bundle = {t["name"]: t["score"] for t in run_autograder(autograder_root["root"], {
            f"{GUIDANCE}.ipynb": notebooks[student]}, no_namespaces=True)["tests"]}
        assert classroom == nbgrader_slots == local[student], student
        # the bundle grades Exercise 4 on its own (default) pipeline: every check's score all the same
        assert bundle == local[student], student


def test_feedback_shows_the_hidden_check_results(course):
    root = course["root"]
    nbgrader(root, "generate_feedback", GUIDANCE, "--force")
    html = (root / "feedback" / "ben" / GUIDANCE / f"{GUIDANCE}.html").read_text()
    assert "FAIL apply_cfg: w=1 returns the conditional prediction" in html
    assert "PASS cross_attention" in html


def test_regenerating_the_assignment_still_works_after_grading(course):
    run = nbgrader(course["root"], "generate_assignment", GUIDANCE, "--force", check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_partial_regrades_keep_the_class(course, tiny_pipeline_dir):
    root, graded = course["root"], course["graded"]
    before = rows(graded / GUIDANCE / "grades.csv")
    run = autograder("grade", str(root / "submitted" / "ben"), "--out", str(graded), "--force",
                     *grade_options(tiny_pipeline_dir))
    assert run.returncode == 0, run.stderr[-2000:]
    assert rows(graded / GUIDANCE / "grades.csv") == before
    assert set(rows(graded / CLIP_ASSIGNMENT / "grades.csv")) == {"ada", "ben", "eli"}
    one_assignment = [str(p) for p in sorted((root / "submitted").glob(f"*/{GUIDANCE}"))]
    run = autograder("grade", *one_assignment, "--out", str(graded), *grade_options(tiny_pipeline_dir))
    assert run.returncode == 0 and "keeping 3 results" in run.stderr, run.stderr[-2000:]   # chen, dana: nothing to grade
    assert rows(graded / GUIDANCE / "grades.csv") == before


def test_an_output_folder_among_the_submissions_is_never_graded(course, tiny_pipeline_dir):
    root = course["root"]
    inside = root / "submitted" / "graded-here"
    run = autograder("grade", str(root / "submitted" / "ada"), "--out", str(inside), *grade_options(tiny_pipeline_dir))
    assert run.returncode == 0, run.stderr[-2000:]
    run = autograder("grade", str(root / "submitted"), "--out", str(root / "graded"),
                     *grade_options(tiny_pipeline_dir))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "graded-here" not in rows(root / "graded" / GUIDANCE / "grades.csv")
    shutil.rmtree(inside)


def test_a_wrong_course_folder_is_refused_with_one_line(course, tmp_path):
    graded = str(course["graded"])
    wrong = autograder("nbgrader-sync", GUIDANCE, "--graded", graded, "--course-dir", str(tmp_path))
    assert wrong.returncode != 0 and "not an nbgrader course folder" in wrong.stderr and "Traceback" not in wrong.stderr
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")   # a course, but not the one graded
    other = autograder("nbgrader-sync", GUIDANCE, "--graded", graded, "--course-dir", str(tmp_path))
    assert other.returncode == 2 and "nbgrader holds none of these submissions" in other.stderr
