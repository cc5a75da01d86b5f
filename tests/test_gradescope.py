"""The Gradescope autograder zip, unpacked into a fake /autograder tree and run as Gradescope runs it:
setup.sh builds the grading environment (from requirements-grader.lock only; apt is the one step this
machine skips), then run_autograder grades uploads with that environment, with bubblewrap and in the
namespace-free mode Gradescope's Docker imposes."""
import json
import subprocess
import sys

import pytest

from autograder.reports import report
from autograder.platforms.gradescope import FeedbackLimit, results
from tests.conftest import run_autograder
from tests.submissions import (ASSIGNMENT, HOSTILE, MISTAKES, ROOT, TAMPERED, build, leaks_into_its_error,
                               variant_with)

GRADER_ONLY = ("jupyterlab", "notebook", "nbgrader", "nbclient", "ipykernel")


def test_the_zip_holds_the_grader_and_nothing_of_the_course(autograder_root):
    names = set(autograder_root["names"])
    checks = f"autograder/assignments/{ASSIGNMENT}/checks/test_apply_cfg.py"
    released = f"release/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"   # its locked cells replace the submission's
    assert {"setup.sh", "run_autograder", "requirements-grader.lock", checks, "text_to_image/__init__.py",
            released} <= names
    assert not [n for n in names if n.startswith(("solutions/", "exercises/", "tests/", "release/")) and n != released]
    setup = (autograder_root["root"] / "source" / "setup.sh").read_text()
    assert "ppa" not in setup and "apt-get install" in setup and "python3.11" in setup


def test_setup_installs_only_what_grading_needs(autograder_root):
    setup = autograder_root["setup"]
    assert setup["returncode"] == 0, setup["stdout"][-3000:] + setup["stderr"][-3000:]
    listed = subprocess.run([str(autograder_root["root"] / "venv" / "bin" / "python"), "-m", "pip", "list",
                             "--format=json"], capture_output=True, text=True, check=True)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"torch", "diffusers", "pytest", "pyseccomp", "einops", "text-conditioning-course"} <= installed
    assert not installed & set(GRADER_ONLY)


@pytest.mark.parametrize("no_namespaces", [False, True], ids=["bubblewrap", "no-namespaces"])
def test_a_nested_upload_is_graded_by_its_expected_name(autograder_root, no_namespaces, request):
    if no_namespaces:
        request.getfixturevalue("others_can_run_python")
    root = autograder_root["root"]
    graded = run_autograder(root, {"work/hw/text_conditioning_guidance.ipynb": variant_with(),
                                   "Untitled.ipynb": HOSTILE["untouched_stubs"][0]}, no_namespaces=no_namespaces)
    assert "Untitled.ipynb: not graded" in graded["output"]
    passed = [t for t in graded["tests"] if t.get("status") == "passed"]
    assert graded["score"] == sum(t["max_score"] for t in passed) > 0
    assert "sandbox" not in graded["output"].lower()   # the grader's set-up is the instructor's business
    # Nothing is shown as passed unless it ran and passed: every test carries its status.
    assert all(t.get("status") in ("passed", "failed") for t in graded["tests"])
    assert all("[not run]" in t["name"] for t in graded["tests"] if t["status"] == "failed")
    secret = root / "source" / f"autograder/assignments/{ASSIGNMENT}/checks/test_apply_cfg.py"
    leak = json.dumps(run_autograder(root, {"text_conditioning_guidance.ipynb": leaks_into_its_error(secret)},
                                     no_namespaces=no_namespaces))
    assert ("Permission denied" if no_namespaces else "No such file") in leak   # tried, and refused
    assert secret.read_text().splitlines()[0][:40] not in leak


def per_check(results: dict) -> dict:
    return {t["name"]: (t["score"], t["max_score"], t.get("status")) for t in results["tests"]}


@pytest.mark.slow
def test_the_bundle_grades_exactly_as_the_local_grader_tampered_locked_cells_included(autograder_root, tmp_path,
                                                                                       others_can_run_python):
    uploads = {"full": variant_with(), "common_mistake": MISTAKES["cfg_common_mistake"][0], **TAMPERED,
               "stub": HOSTILE["untouched_stubs"][0]}
    for student, variant in uploads.items():
        build(variant, tmp_path / "class" / student / f"{ASSIGNMENT}.ipynb")
    local = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "class"), "--out",
                            str(tmp_path / "out"), "--assignment", ASSIGNMENT, "--workers", "2", "--quiet"],
                           capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    here = {student: per_check(json.loads((tmp_path / "out" / ASSIGNMENT / student / "results.json").read_text()))
            for student in uploads}
    assert here["stub"] != here["common_mistake"] != here["full"]
    for student in ("common_mistake", *TAMPERED):   # each Gradescope run costs ~10 s: the ones that can differ
        there = run_autograder(autograder_root["root"], {f"{ASSIGNMENT}.ipynb": uploads[student]}, no_namespaces=True)
        assert per_check(there) == here[student], student
    for student in TAMPERED:   # the release's set-up cell ran, not the student's
        assert here[student] == here["full"], student


def test_feedback_is_rate_limited_from_the_submission_metadata(autograder_root):
    root = autograder_root["root"]
    upload = {"text_conditioning_guidance.ipynb": variant_with()}
    now = "2026-11-20T12:00:00.000000-08:00"
    earlier = [{"submission_time": t, "score": 1.0, "results": {}} for t in
               ("2026-11-20T09:00:00.000000-08:00", "2026-11-19T13:00:00.000000-08:00")]
    limited = run_autograder(root, upload, {"created_at": now, "previous_submissions": earlier})
    assert limited["output"].startswith("You have had full feedback 2 times in the last 24 hours")
    assert "2026-11-20T13:00" in limited["output"]   # when the older one leaves the window
    hidden = [t for t in limited["tests"] if t["visibility"] != "visible"]
    assert hidden and all(t["visibility"] == "after_due_date" for t in hidden)
    assert limited["score"] > 0   # still graded
    one_day_later = run_autograder(root, upload, {"created_at": "2026-11-21T10:00:00-08:00",
                                                  "previous_submissions": earlier})
    assert all(t["visibility"] == "visible" for t in one_day_later["tests"])


def outcome(*checks) -> dict:
    return {"assignment": ASSIGNMENT, "checks": [
        {"name": f"apply_cfg: {name}", "score": score, "max_score": 1.0, "outcome": kind, "message": "m",
         "visible": visible} for name, score, kind, visible in checks]}


@pytest.mark.quick
@pytest.mark.parametrize("visibility", ["after_due_date", "after_published", "hidden"])
def test_hidden_checks_follow_the_course_visibility(visibility):
    graded = report.gradescope_results(outcome(("w=0", 1.0, "passed", True), ("formula", 0.0, "failed", False),
                                               ("sweep", 0.0, "not_run", False)), visibility)
    assert [t["visibility"] for t in graded["tests"]] == ["visible", visibility, visibility]
    assert f"2 further checks (2 points) {report.WHEN_SHOWN[visibility]}" in graded["output"]
    not_run = graded["tests"][2]
    assert not_run["status"] == "failed" and not_run["max_score"] == 0 and "[not run]" in not_run["name"]


@pytest.mark.quick
@pytest.mark.quick
@pytest.mark.parametrize("visibility", ["visible", "after_due_date"])
def test_every_feedback_format_follows_the_visibility(visibility):
    from autograder.platforms.nbgrader_slots import slot_outputs

    graded = outcome(("w=0", 1.0, "passed", True), ("secret scale", 0.0, "failed", False))
    feedback = report.feedback_markdown("ada", graded, visibility).replace("\\", "")   # Markdown escapes
    slot = "".join(o.get("text", "") for o in slot_outputs(graded, "apply_cfg", visibility))
    for shown in (feedback, slot):
        assert "apply_cfg: w=0" in shown
        assert ("apply_cfg: secret scale" in shown) == (visibility == "visible")
        assert ("further checks" in shown) == (visibility != "visible")
    assert "Score: 1 / 2" in feedback   # the score is the same whatever is shown


def test_a_feedback_limit_counts_only_its_window_as_of_the_submission_time(tmp_path):
    limit = FeedbackLimit("3/24h")
    metadata = {"created_at": "2026-11-20T12:00:00+00:00", "previous_submissions": [
        {"submission_time": "2026-11-20T11:00:00+00:00"}, {"submission_time": "2026-11-20T01:00:00+00:00"},
        {"submission_time": "2026-11-19T11:59:00+00:00"}, {"submission_time": "2026-11-21T00:00:00+00:00"}]}
    assert limit.reached(metadata) is None   # two inside the window; one too old, one after this submission
    metadata["previous_submissions"].append({"submission_time": "2026-11-20T06:00:00+00:00"})
    assert "3 times in the last 24 hours" in limit.reached(metadata)
    (tmp_path / "meta.json").write_text(json.dumps(metadata))
    for visibility in ("visible", "after_published"):   # the sentence says how the checks are shown meanwhile
        limited = results(outcome(("w=0", 1.0, "passed", True), ("formula", 0.0, "failed", False)), visibility,
                          tmp_path / "meta.json", limit)
        shown = "after_due_date" if visibility == "visible" else visibility
        assert f"its further checks {report.WHEN_SHOWN[shown]}" in limited["output"]
        assert limited["tests"][1]["visibility"] == shown
    (tmp_path / "meta.json").write_text("not json")
    assert "You have had" not in results(outcome(("w=0", 1.0, "passed", True)), "visible", tmp_path / "meta.json",
                                         limit)["output"]
    for bad in ("3", "0/24h", "three/24h"):
        with pytest.raises(ValueError, match="3/24h"):
            FeedbackLimit(bad)


def test_the_grader_lock_is_what_grading_imports_pinned_as_the_course_pins_it():
    check = subprocess.run([sys.executable, "scripts/grader_lock.py", "--check"], capture_output=True, text=True,
                           cwd=ROOT)
    assert check.returncode == 0, check.stderr
    course = dict(line.split("==") for line in (ROOT / "requirements.lock").read_text().splitlines()
                  if "==" in line and not line.startswith("#"))
    for line in (ROOT / "requirements-grader.lock").read_text().splitlines()[1:]:
        name, version = line.split("==")
        assert course[name] == version
