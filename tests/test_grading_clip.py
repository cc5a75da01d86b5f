"""Lesson 2 graded through the same `grade` command and sandbox as Lesson 1: its corpora of correct,
mistaken and hostile submissions."""
import json
import subprocess
import sys

import pytest

from autograder.reports import report
from autograder.assignments import ASSIGNMENTS
from tests.clip_submissions import (CLIP_ASSIGNMENT, CLIP_CORRECT, CLIP_HOSTILE, CLIP_MISTAKES, ROOT,
                                    write_clip_corpus)

FULL = {name: float(points) for name, points in ASSIGNMENTS[CLIP_ASSIGNMENT].functions.items()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("clip-corpus")
    out = tmp_path_factory.mktemp("clip-graded")
    for name, variants in (("correct", CLIP_CORRECT), ("mistakes", CLIP_MISTAKES), ("hostile", CLIP_HOSTILE)):
        write_clip_corpus(corpus / name, variants)
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(corpus / "correct"), str(corpus / "mistakes"),
                          str(corpus / "hostile"), "--out", str(out), "--workers", "2", "--call-timeout", "10",
                          "--sandbox", "bwrap", "--quiet"], capture_output=True, text=True, timeout=1200)
    return {"run": run, "out": out}


def results_of(graded, name) -> dict:
    return json.loads((graded["out"] / CLIP_ASSIGNMENT / name / "results.json").read_text())


def per_function(graded, name) -> dict[str, float]:
    outcome = json.loads((graded["out"] / CLIP_ASSIGNMENT / name / "outcome.json").read_text())
    return {function: score for function, (score, _) in report.function_totals(outcome["checks"]).items()}


def failed(results) -> dict[str, str]:
    """check name after "function: " -> its message, for the checks that did not pass."""
    return {t["name"].split(": ", 1)[1]: t.get("output", "") for t in results["tests"] if t["status"] != "passed"}


@pytest.mark.quick
def test_the_class_is_graded_as_lesson_2(graded):
    run = graded["run"]
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    expected = set(CLIP_CORRECT) | set(CLIP_MISTAKES) | set(CLIP_HOSTILE)
    assert {p.name for p in (graded["out"] / CLIP_ASSIGNMENT).iterdir() if p.is_dir()} == expected
    header = (graded["out"] / CLIP_ASSIGNMENT / "grades.csv").read_text().splitlines()[0]
    assert "drop_text: each caption is dropped on its own with probability drop_prob" in header


@pytest.mark.parametrize("name", sorted(CLIP_CORRECT))
def test_correct_styles_get_full_marks(graded, name):
    results = results_of(graded, name)
    assert per_function(graded, name) == FULL, failed(results)
    assert results["score"] == sum(FULL.values())


@pytest.mark.parametrize("name", sorted(CLIP_MISTAKES))
def test_each_mistake_loses_exactly_its_checks_with_a_message_naming_it(graded, name):
    _, function, checks, word = CLIP_MISTAKES[name]
    results = results_of(graded, name)
    scores = per_function(graded, name)
    assert scores[function] < FULL[function]
    assert {f: s for f, s in scores.items() if f != function} == {f: p for f, p in FULL.items() if f != function}
    lost = failed(results)
    assert all(check.startswith(f"{function}:") is False for check in lost)   # names were split off
    if checks is not None:
        assert set(lost) == checks, lost
    assert any(word in message for message in lost.values()), lost


@pytest.mark.parametrize("name", sorted(CLIP_HOSTILE))
def test_hostile_submissions_earn_no_false_credit(graded, name):
    _, honest_maximum = CLIP_HOSTILE[name]
    results = results_of(graded, name)
    assert results["score"] <= honest_maximum, [t["name"] for t in results["tests"] if t["score"]]
    assert all(t["status"] in ("passed", "failed") for t in results["tests"])


def test_without_namespaces_the_hostile_corpus_scores_as_under_bubblewrap(graded, tmp_path, others_can_run_python):
    """Where no namespace can be made (Docker, Gradescope) the reference file is made private to the grader."""
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    write_clip_corpus(corpus, {**CLIP_HOSTILE, "correct": CLIP_CORRECT["reference_like"]})
    run = subprocess.run([sys.executable, "-m", "tests.no_namespaces", sys.executable, "-m", "autograder", "grade",
                          str(corpus), "--out", str(out), "--workers", "2", "--call-timeout", "10", "--quiet"],
                         capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert run.returncode == 0 and "(sandbox: uid)" in run.stdout, run.stdout[-2000:] + run.stderr[-3000:]
    confined = {name: json.loads((out / CLIP_ASSIGNMENT / name / "results.json").read_text()) for name in CLIP_HOSTILE}
    for name in CLIP_HOSTILE:
        assert [(t["name"], t["score"]) for t in confined[name]["tests"]] == \
            [(t["name"], t["score"]) for t in results_of(graded, name)["tests"]], name
    assert json.loads((out / CLIP_ASSIGNMENT / "correct" / "results.json").read_text())["score"] == sum(FULL.values())
    refused = json.dumps(confined["reads_the_reference_from_disk"])
    assert "REFUSED" in refused and "Permission denied" in refused
