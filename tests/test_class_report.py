"""The class report, the regrade diff and the gradebook exports, from one real grading run of a small Lesson 2
class (through the CLI and the sandbox), and one real regrade after a check was changed."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape

from autograder import assignments
from autograder.intake.graded_code import graded_code
from autograder.reports import class_report, lms_export, regrade_diff, report
from tests.clip_submissions import CLIP_ASSIGNMENT, CLIP_CORRECT, CLIP_HOSTILE, CLIP_MISTAKES, build_clip
from tests.submissions import ROOT

LESSON = assignments.get(CLIP_ASSIGNMENT)
CLASS = {"ada": CLIP_CORRECT["einsum_and_einops"], "ben": CLIP_MISTAKES["mask_not_dropped"][0],
         "dan": CLIP_HOSTILE["untouched_stubs"][0]}
MASK_CHECK = "test_drop_text.py"
MASK_EXPECTATION = "a dropped caption keeps its own mask"


def grade(*arguments, cwd=ROOT, env=None, program=("-m", "autograder")):
    return subprocess.run([sys.executable, *program, "grade", *arguments, "--workers", "2", "--quiet",
                           "--call-timeout", "10", "--cell-timeout", "10"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


# `python -m autograder` that also counts the fingerprints the class report makes after the last submission.
COUNTING_LATE_FINGERPRINTS = """
import os, runpy, sys
from autograder.cli import grade
from autograder.reports import similarity

class_reports_after, made_late = grade.class_reports_after, []

def counted(*arguments):
    make = similarity._fingerprint
    similarity._fingerprint = lambda *a, **k: made_late.append(a[0]) or make(*a, **k)
    try:
        return class_reports_after(*arguments)
    finally:
        similarity._fingerprint = make
        with open(os.environ["LATE_FINGERPRINTS"], "w") as handle:
            handle.write(str(len(made_late)))

grade.class_reports_after = counted
sys.argv = ["autograder", *sys.argv[1:]]
runpy.run_module("autograder", run_name="__main__")
"""


@pytest.fixture
def cli(capsys):
    """`python -m autograder ...` in this process (the commands after grading import no torch): exit status,
    stdout, stderr."""
    from autograder.cli import main

    def run(*arguments):
        try:
            status = main([str(a) for a in arguments])
        except SystemExit as exit:
            status = exit.code
        said = capsys.readouterr()
        return subprocess.CompletedProcess(arguments, status, said.out, said.err)
    return run


@pytest.fixture(scope="session")
def graded_class(tmp_path_factory):
    """A class of three notebooks and one empty file, graded once; OUT as `grade` leaves it."""
    submitted = tmp_path_factory.mktemp("submitted")
    for student, cells in CLASS.items():
        build_clip(cells, submitted / student / CLIP_ASSIGNMENT / f"{CLIP_ASSIGNMENT}.ipynb")
    empty = submitted / "erin" / CLIP_ASSIGNMENT / f"{CLIP_ASSIGNMENT}.ipynb"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")
    out = tmp_path_factory.mktemp("out")
    late = tmp_path_factory.mktemp("late") / "fingerprints"
    run = grade(str(submitted), "--out", str(out), program=("-c", COUNTING_LATE_FINGERPRINTS),
                env={**os.environ, "LATE_FINGERPRINTS": str(late)})
    assert run.returncode == 0, run.stderr[-3000:]
    return {"out": out, "submitted": submitted, "stdout": run.stdout, "late fingerprints": int(late.read_text()),
            "outcomes": report.stored_outcomes(out / CLIP_ASSIGNMENT)}


@pytest.fixture(scope="session")
def regraded(graded_class, tmp_path_factory):
    """The same class regraded into a copy of OUT by a grader whose mask expectation was dropped (a check fixed
    mid-term): only a student who failed just that expectation can move."""
    grader = tmp_path_factory.mktemp("grader")
    for folder in ("autograder", "text_to_image", "release", "solutions"):
        shutil.copytree(ROOT / folder, grader / folder, ignore=shutil.ignore_patterns("__pycache__"))
    check = grader / "autograder" / "assignments" / CLIP_ASSIGNMENT / "checks" / MASK_CHECK
    text = check.read_text()
    changed = re.sub(r"    expect\(bool\(\(new_mask\[is_null\] == null_mask\[0\]\)\.all\(\)\),\n.*?\n.*?\)\n", "", text)
    assert changed != text and MASK_EXPECTATION not in changed
    check.write_text(changed)
    new = tmp_path_factory.mktemp("regraded") / "out"
    shutil.copytree(graded_class["out"], new)
    run = grade(str(graded_class["submitted"]), "--out", str(new), cwd=grader,
                env={**os.environ, "PYTHONPATH": str(grader)})
    assert run.returncode == 0, run.stderr[-3000:]
    return new


def test_grade_writes_a_class_report_with_the_hardest_checks_first(graded_class):
    out, outcomes = graded_class["out"], graded_class["outcomes"]
    page = out / CLIP_ASSIGNMENT / class_report.REPORT_NAME
    assert f"class report: {page}" in graded_class["stdout"]
    html = page.read_text()
    # Item analysis, recomputed here from each student's Gradescope results.json (not the outcome the page read).
    passed, counted = {}, {}
    for student in outcomes:
        for test in json.loads((out / CLIP_ASSIGNMENT / student / "results.json").read_text())["tests"]:
            counted[test["name"]] = counted.get(test["name"], 0) + 1
            passed[test["name"]] = passed.get(test["name"], 0) + (test["status"] == "passed")
    items = class_report.item_analysis(outcomes)
    assert [(i["name"], i["passed"], i["counted"]) for i in items] == sorted(
        ((name, passed[name], counted[name]) for name in counted), key=lambda t: (t[1] / t[2], t[0]))
    mask_check = next(i for i in items if MASK_EXPECTATION in " ".join(m for m, _ in i["messages"]))
    assert dict(mask_check["messages"])[next(m for m, _ in mask_check["messages"] if MASK_EXPECTATION in m)] == 1
    positions = [html.index(f"<td>{escape(i['name'])}") for i in items]   # as text, escaped
    assert positions == sorted(positions)   # the page lists them in that order
    # The empty file is not graded, with its reason; the figures are inline PNGs; nothing is fetched.
    problems = class_report.not_graded(outcomes)
    assert [p["student"] for p in problems] == ["erin"] and "empty" in problems[0]["reason"]
    assert "erin" in html and html.count('src="data:image/png;base64,') == 3
    assert not re.search(r'(src|href)="(?!data:|#)', html)


def test_the_similarity_ranking_compares_the_code_as_graded_even_once_the_notebooks_are_gone(graded_class, tmp_path):
    outcomes = graded_class["outcomes"]
    for student in CLASS:   # kept by the worker as it graded: no notebook is read again at the end of the run
        assert outcomes[student]["graded_code"] == graded_code(Path(outcomes[student]["submission"]), LESSON)
    assert outcomes["erin"]["graded_code"] is None   # an empty file has no code
    ranking, missing = class_report.similarity_of(outcomes, LESSON)
    assert ranking.students == 4 and not missing
    moved = {student: {**outcome, "submission": str(tmp_path / "moved-away.ipynb")} for student, outcome in outcomes.items()}
    ranking_moved, missing_moved = class_report.similarity_of(moved, LESSON)
    assert missing_moved == ["erin"]   # the one whose code was never kept
    from_the_notebooks = {student: {key: value for key, value in outcomes[student].items() if key != "graded_code"}
                          for student in CLASS}
    assert ranking_moved == class_report.similarity_of(from_the_notebooks, LESSON)[0] and ranking_moved.students == 3
    without_kept_code = {student: {key: value for key, value in outcome.items() if key != "graded_code"}
                         for student, outcome in moved.items()}
    assert sorted(class_report.similarity_of(without_kept_code, LESSON)[1]) == ["ada", "ben", "dan", "erin"]


def test_fingerprints_made_while_grading_are_the_ones_the_ranking_uses(graded_class, monkeypatch):
    """The grade command hands each outcome to SimilarityAhead as it stores it: the ranking after the last
    submission then fingerprints nothing (one CPU would otherwise work alone there), and ranks as from scratch."""
    from autograder.reports import similarity

    outcomes = graded_class["outcomes"]
    monkeypatch.setattr(similarity, "_made", {})
    from_scratch = class_report.similarity_of(outcomes, LESSON)[0]
    monkeypatch.setattr(similarity, "_made", {})
    ahead = class_report.SimilarityAhead()
    for outcome in outcomes.values():
        ahead.add(outcome, LESSON)

    def fingerprint_after_the_last_submission(*arguments, **options):
        raise AssertionError("a fingerprint was made after the last submission")

    monkeypatch.setattr(similarity, "_fingerprint", fingerprint_after_the_last_submission)
    assert class_report.similarity_of(outcomes, LESSON)[0] == from_scratch and from_scratch.students == 4


def test_the_grade_command_fingerprints_the_class_while_it_grades(graded_class):
    """The ranking after the last submission compared the whole class and had no fingerprint left to make."""
    html = (graded_class["out"] / CLIP_ASSIGNMENT / class_report.REPORT_NAME).read_text()
    assert "ada" in html and graded_class["late fingerprints"] == 0


def test_times_and_slowest_come_from_the_stored_outcomes(graded_class):
    facts = class_report.summary(graded_class["outcomes"], LESSON)
    times = {s: o["execution_time"] for s, o in graded_class["outcomes"].items()}
    assert facts["slowest"][0] == max(times.items(), key=lambda pair: pair[1])
    assert facts["total_time"] == pytest.approx(sum(times.values()))
    assert facts["students"] == 4 and facts["full_marks"] == 1   # ada


def test_exports_carry_the_totals_of_grades_csv_and_no_formula(graded_class, cli):
    out, outcomes = graded_class["out"], graded_class["outcomes"]
    totals = {row["student"]: row["total"] for row in csv.DictReader(io.StringIO(
        (out / CLIP_ASSIGNMENT / "grades.csv").read_text()))}
    for form in lms_export.FORMATS:
        run = cli("export", form, out)
        assert run.returncode == 0, run.stderr
        rows = list(csv.reader(io.StringIO((out / CLIP_ASSIGNMENT / f"{form}.csv").read_text(), newline="")))
        if form == "canvas":
            assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
            assert rows[1][0] == "Points Possible" and rows[1][5] == f"{LESSON.points:g}"
            assert {r[3]: r[5] for r in rows[2:]} == totals
        else:
            assert rows[0][0] == "Username" and {r[0]: r[1] for r in rows[1:]} == totals
    hostile = {"=HYPERLINK(\"http://x\")": outcomes["erin"]}   # a folder name is student text
    for text in (lms_export.canvas_csv(hostile, LESSON), lms_export.moodle_csv(hostile, LESSON)):
        assert not any(cell.startswith(report.FORMULA_STARTS) for row in csv.reader(io.StringIO(text))
                       for cell in row if cell)


def test_changing_one_check_and_regrading_names_exactly_who_moves(graded_class, regraded, cli):
    old = graded_class["out"]
    moves = regrade_diff.compare(old, regraded)
    assert [(m.student, m.old_total, m.new_total) for m in moves] == [("ben", 20.0, 21.0)]
    [change] = moves[0].checks
    assert MASK_EXPECTATION in change.old["message"] and change.new["outcome"] == "passed"
    shown = cli("diff", old, regraded)
    assert shown.returncode == 0 and f"{CLIP_ASSIGNMENT}/ben: 20 -> 21 of 21 (+1)" in shown.stdout
    assert MASK_EXPECTATION in shown.stdout and not re.search(r"/(ada|dan|erin):", shown.stdout)
    # The regrade kept what it replaced, and its class report shows the same diff.
    html = (regraded / CLIP_ASSIGNMENT / class_report.REPORT_NAME).read_text()
    section = html.split('id="regrade"', 1)[1].split("<h2", 1)[0]
    assert "<td>ben</td>" in section and not re.search(r"<td>(ada|dan|erin)</td>", section)


def test_syncs_refuse_a_run_whose_diff_was_not_acknowledged(graded_class, regraded, tmp_path, cli):
    old = graded_class["out"]
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "nbgrader_config.py").write_text("")
    (tmp_path / "clones").mkdir()
    syncs = [("export", "canvas", regraded),
             ("nbgrader-sync", CLIP_ASSIGNMENT, "--graded", regraded, "--course-dir", tmp_path / "course"),
             ("classroom-payloads", regraded, "--assignment", CLIP_ASSIGNMENT, "--clones", tmp_path / "clones",
              "--outbox", tmp_path / "outbox")]
    for sync in syncs:
        refused = cli(*sync, "--require-acknowledged-diff", old)
        assert refused.returncode == 2 and "never acknowledged" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    acknowledged = cli("diff", old, regraded, "--acknowledge")
    assert acknowledged.returncode == 0
    assert cli(*syncs[0], "--require-acknowledged-diff", old).returncode == 0
    assert cli(*syncs[2], "--require-acknowledged-diff", old).returncode == 0
    # A run changed after its diff was read is refused again.
    ben = regraded / CLIP_ASSIGNMENT / "ben" / report.OUTCOME_FILE
    ben.write_text(ben.read_text().replace('"score": 1.0', '"score": 0.0', 1))
    again = cli(*syncs[0], "--require-acknowledged-diff", old)
    assert again.returncode == 2 and "changed since" in again.stderr


def test_the_report_renders_offline_in_a_real_browser(graded_class):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (requirements.lock pins it)")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no chromium on PATH: apt-get install chromium (scripts/test.sh does, as root)")
    page_path = graded_class["out"] / CLIP_ASSIGNMENT / class_report.REPORT_NAME
    requested = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_path.as_uri(), wait_until="load")
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            rows = {name: page.locator(f"table.{name} tr").count() for name in ("summary", "items", "problems")}
            title = page.title()
        finally:
            browser.close()
    assert len(images) == 3 and all(done and width > 100 and height > 100 for done, width, height in images), images
    assert rows["items"] == 1 + len(class_report.item_analysis(graded_class["outcomes"])) and rows["problems"] == 2
    assert title.startswith(LESSON.title)
    assert [url for url in requested if not url.startswith(("file:", "data:"))] == []
