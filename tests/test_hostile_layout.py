"""Attacks through the submission folder rather than the code: files the grader might load, follow or
mis-file. Each is graded through the real CLI and sandbox beside an honest student whose score must
not move."""
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.sandbox.inside import wipe
from tests.submissions import ASSIGNMENT, CORRECT, HOSTILE, ROOT, build, variant_with

NOTEBOOK = f"{ASSIGNMENT}.ipynb"
FULL = sum(ASSIGNMENTS[ASSIGNMENT].functions.values())   # Exercise 4 on the grader's CPU stand-in here
DEEP_LEVELS = 3000
FORMULA = '=HYPERLINK("http:\u2215\u2215evil", "x")'   # no "/" in a folder name: division slashes
CONFTEST = '''
import pathlib
pathlib.Path({marker!r}).write_text("the grader ran my conftest")

def pytest_runtest_makereport(item, call):
    call.excinfo = None
'''


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    submitted, marker = root / "submitted", root / "conftest-ran"

    def folder(student):
        path = submitted / student / ASSIGNMENT
        path.mkdir(parents=True)
        return path

    build(CORRECT["einsum"], folder("honest") / NOTEBOOK)
    (folder("conftest") / "conftest.py").write_text(CONFTEST.format(marker=str(marker)))
    build(HOSTILE["untouched_stubs"][0], submitted / "conftest" / ASSIGNMENT / NOTEBOOK)
    solution = ROOT / "solutions" / ASSIGNMENT / NOTEBOOK
    (folder("link") / NOTEBOOK).symlink_to(solution)
    build(CORRECT["einsum"], folder("grades.csv") / NOTEBOOK)
    build(HOSTILE["untouched_stubs"][0], folder(".bob") / NOTEBOOK)
    build(variant_with(apply_cfg="def apply_cfg(noise_uncond, noise_cond, guidance_scale):\n    return noise_cond\n"),
          folder("bob") / NOTEBOOK)
    (folder("dir_notebook") / NOTEBOOK).mkdir()
    os.mkfifo(folder("fifo") / NOTEBOOK)
    loop = folder("loop")
    (loop / NOTEBOOK).symlink_to(loop / NOTEBOOK)
    many = folder("many")
    build(CORRECT["einsum"], many / NOTEBOOK)
    for index in range(9):
        build(HOSTILE["untouched_stubs"][0], many / f"copy{index}.ipynb")
    with open(folder("huge") / NOTEBOOK, "wb") as stream:   # 3 GiB, sparse: costs no disk
        stream.truncate(3 * 2**30)
    # A tree thousands of levels deep, committed beside a correct notebook.
    deep = folder("deep")
    build(CORRECT["einsum"], deep / NOTEBOOK)
    os.makedirs(deep / "tree", exist_ok=True)
    here = os.getcwd()
    os.chdir(deep / "tree")
    for _ in range(DEEP_LEVELS):
        os.mkdir("d")
        os.chdir("d")
    os.chdir(here)
    # A folder named after a classmate, inside one's own submission, holding a stub as "theirs".
    impostor = folder("impostor")
    build(HOSTILE["untouched_stubs"][0], impostor / NOTEBOOK)
    build(HOSTILE["untouched_stubs"][0], impostor / "honest" / ASSIGNMENT / NOTEBOOK)
    # Ids that a replacement of odd characters would make equal, and one that a spreadsheet would run.
    build(CORRECT["einsum"], folder("s01@uni") / NOTEBOOK)
    build(HOSTILE["untouched_stubs"][0], folder("s01_uni") / NOTEBOOK)
    build(HOSTILE["untouched_stubs"][0], folder(FORMULA) / NOTEBOOK)

    out = root / "graded"
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(submitted), "--out", str(out), "--quiet",
                          "--workers", "2", "--call-timeout", "5"], capture_output=True, text=True, timeout=600)
    yield {"run": run, "out": out / ASSIGNMENT, "marker": marker}
    wipe.remove(str(root))   # pytest's own clean-up would meet RecursionError in the deep tree


def results(attacked, student):
    return json.loads((attacked["out"] / student / "results.json").read_text())


def test_the_run_ends_cleanly_with_one_row_per_student(attacked):
    assert attacked["run"].returncode == 0, attacked["run"].stderr[-2000:]
    rows = list(csv.reader(io.StringIO((attacked["out"] / "grades.csv").read_text())))
    students = sorted(row[0] for row in rows[1:])
    # Hidden folders (.bob, like .ipynb_checkpoints or .git) are nobody's submission.
    renamed = next(s for s in students if s.startswith("grades.csv-"))   # our own file's name is reserved
    assert students == sorted(["honest", "conftest", "link", renamed, "bob", "dir_notebook", "fifo",
                               "loop", "many", "huge", "deep", "impostor", "s01@uni", "s01_uni", "'" + FORMULA])


def test_a_conftest_beside_the_notebook_never_runs(attacked):
    assert not attacked["marker"].exists()
    assert results(attacked, "conftest")["score"] == 0
    assert results(attacked, "honest")["score"] == FULL


def test_a_link_to_the_solution_earns_nothing(attacked):
    link = results(attacked, "link")
    assert link["score"] == 0 and "symbolic link" in link["output"]


def test_names_cannot_take_another_students_place(attacked):
    assert results(attacked, "bob")["score"] == FULL - ASSIGNMENTS[ASSIGNMENT].functions["apply_cfg"] + 1
    renamed = next(p.name for p in attacked["out"].iterdir() if p.name.startswith("grades.csv-"))
    assert results(attacked, renamed)["score"] == FULL


def test_ids_are_the_platforms_own_one_to_one(attacked):
    # Characters a file name allows are kept, so s01@uni and s01_uni stay two students with their own scores.
    assert results(attacked, "s01@uni")["score"] == FULL
    assert results(attacked, "s01_uni")["score"] == 0


def test_a_folder_named_after_a_classmate_grades_only_its_owner(attacked):
    assert results(attacked, "honest")["score"] == FULL
    assert results(attacked, "impostor")["score"] == 0
    assert not any(p.name.startswith("honest") and p.name != "honest" for p in attacked["out"].iterdir())


def test_a_tree_of_any_depth_in_a_submission_costs_nothing(attacked):
    assert results(attacked, "deep")["score"] == FULL


def test_a_name_that_is_a_formula_stays_text_in_grades_csv(attacked):
    rows = list(csv.reader(io.StringIO((attacked["out"] / "grades.csv").read_text())))
    assert ["'" + FORMULA] == [row[0] for row in rows if FORMULA in row[0]]


@pytest.mark.parametrize("student, words", [("dir_notebook", "is a folder"), ("fifo", "not a regular file"),
                                            ("loop", "symbolic link"), ("huge", "3072 MB")])
def test_files_that_are_not_notebooks_get_a_row_and_a_reason(attacked, student, words):
    graded = results(attacked, student)
    assert graded["score"] == 0 and words in graded["output"], graded["output"]


def test_many_notebooks_make_one_row_graded_once(attacked):
    many = results(attacked, "many")
    assert many["score"] == FULL
    assert many["output"].count("not graded (only") == 9


def test_a_temporary_folder_too_deep_for_a_socket_address_still_grades(tmp_path):
    # A Unix socket's address holds 107 bytes: the template's and the pipeline server's sockets go to /tmp then.
    scratch = tmp_path / ("a-build-folder-nested-deep-inside-a-ci-runner-" * 3)
    scratch.mkdir()
    for student in ("one", "two"):   # two workers: the pipeline server starts too
        build(CORRECT["einsum"], tmp_path / "in" / student / NOTEBOOK)
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "in"), "--out",
                          str(tmp_path / "out"), "--quiet", "--workers", "2"], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "TMPDIR": str(scratch)})
    assert len(str(scratch)) > 120 and run.returncode == 0, run.stderr[-2000:]
    assert [results({"out": tmp_path / "out" / ASSIGNMENT}, s)["score"] for s in ("one", "two")] == [FULL, FULL]
    assert list(scratch.iterdir()) == []


def test_a_worker_killed_mid_submission_leaves_nothing_behind(tmp_path):
    from autograder.sandbox.cgroups import CGROUP_V1, v2_parent

    parents = [p for p in (CGROUP_V1 / "pids", CGROUP_V1 / "memory", v2_parent()) if p is not None and p.is_dir()]

    def cgroups_of(run):   # a run's workers name their cgroups after the grade command's pid (other runs may be on)
        return {p for parent in parents for p in parent.glob(f"autograder-{run.pid}-*")}

    hanging = build(HOSTILE["infinite_loops"][0], tmp_path / "in" / "loops" / NOTEBOOK)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(hanging), "--out", str(tmp_path / "out"),
                            "--quiet", "--timeout", "4", "--call-timeout", "30"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(scratch)})
    made = set()
    while run.poll() is None:
        made |= cgroups_of(run)
        time.sleep(0.1)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 2 and "grader errors on 1 submissions" in stderr   # the worker was killed,
    assert "grading took longer than 4 s" in (tmp_path / "out" / "grader-errors.log").read_text()   # and why
    assert list(scratch.iterdir()) == []          # its sandbox folders went with it
    assert made or not parents                    # where the machine has cgroups, the run made some,
    assert cgroups_of(run) == set()               # and none is left


def as_from_a_terminal():
    """Ctrl-C as a shell's foreground job gets it: SIGINT neither ignored nor blocked, whatever this test
    process inherited or was left with by earlier tests (a child keeps both across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_stops_at_once_leaves_nothing_behind_and_the_next_run_resumes(tmp_path):
    build(CORRECT["einsum"], tmp_path / "in" / "a" / NOTEBOOK)
    build(HOSTILE["infinite_loops"][0], tmp_path / "in" / "b" / NOTEBOOK)   # each function hangs to its deadline
    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir()
    command = [sys.executable, "-m", "autograder", "grade", str(tmp_path / "in"), "--out", str(out), "--workers", "1",
               "--call-timeout", "3"]
    env = {**os.environ, "TMPDIR": str(scratch)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + 300
    while not (out / ASSIGNMENT / "a" / "outcome.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)   # b is being graded now
    signals = re.findall(r"^(Sig(?:Blk|Ign|Cgt)):\s*(\S+)", Path(f"/proc/{process.pid}/status").read_text(), re.M)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted: 1 of 2 submissions graded" in stderr, (signals, stderr[-2000:])
    assert "Traceback" not in stderr and not (out / ASSIGNMENT / "b" / "outcome.json").exists()
    assert list(scratch.iterdir()) == []   # no worker or sandbox folder left
    build(HOSTILE["untouched_stubs"][0], tmp_path / "in" / "b" / NOTEBOOK)   # b resubmits (quick to grade)
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "keeping 1 results from an earlier run" in again.stderr
    assert results({"out": out / ASSIGNMENT}, "a")["score"] == FULL and results({"out": out / ASSIGNMENT}, "b")["score"] == 0
