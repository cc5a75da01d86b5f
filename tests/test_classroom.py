"""GitHub Classroom: the students' template repository and the grader's workflow, checked with GitHub
Classroom's own grading reporter (run with node, unchanged) and actionlint, on real git repositories
graded by the real CLI and sandbox."""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from autograder.reports import report
from autograder.release import student_library
from autograder.assignments import ASSIGNMENTS
from autograder.platforms import github_classroom
from tests.clip_submissions import CLIP_ASSIGNMENT, CLIP_CORRECT, build_clip
from tests.submissions import ASSIGNMENT, HOSTILE, MISTAKES, ROOT, build, variant_with

JS = ROOT / "tests" / "classroom_js"
GRADER_WORKFLOW = ROOT / ".github" / "workflows" / "classroom-grading.yml"
STUDENT_WORKFLOW = github_classroom.TEMPLATE / ".github" / "workflows" / "classroom.yml"
PREFIX = "text-conditioning-guidance-"
GIT = ["git", "-c", "user.name=Student", "-c", "user.email=student@example.org", "-c", "init.defaultBranch=main"]


def reporter(**results: str) -> tuple[subprocess.CompletedProcess, str | None]:
    """Classroom's reporter with these runners' base64 results, as its action step runs it: (run, 'X/Y')."""
    env = {**os.environ, "INPUT_RUNNERS": ",".join(results),
           **{f"{runner.upper()}_RESULTS": value for runner, value in results.items()}}
    run = subprocess.run(["node", str(JS / "reporter" / "src" / "main.js")], env=env, capture_output=True,
                         text=True, timeout=60)
    points = re.search(r"::notice title=Autograding complete::Points (\S+)", run.stdout)
    return run, points and points[1]


def test_workflows_pass_actionlint(actionlint, tmp_path):
    assert actionlint(GRADER_WORKFLOW, STUDENT_WORKFLOW) == []
    slipped = tmp_path / "classroom.yml"   # the linter does catch a slip in these files
    slipped.write_text(STUDENT_WORKFLOW.read_text().replace("steps.visible.outputs", "steps.visibel.outputs"))
    assert any("visibel" in finding["message"] for finding in actionlint(slipped))


def every_text(folder: Path):
    """Each file's text, and each member's of the course library's wheel (a zip)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                yield from (wheel.read(name).decode(errors="replace") for name in wheel.namelist())
        else:
            yield path.read_text()


def test_nothing_students_can_edit_holds_a_check_or_a_token(tmp_path):
    template = github_classroom.template(ASSIGNMENT, tmp_path / "template")
    text = "\n".join(every_text(template))
    check_names = [m for path in ASSIGNMENTS[ASSIGNMENT].checks_dir.glob("test_*.py")
                   for m in re.findall(r'@check\("([^"]+)"', path.read_text())]
    assert len(check_names) > 20 and not [name for name in check_names if name in text]
    assert "secrets." not in text and "GH_TOKEN" not in text and "token:" not in STUDENT_WORKFLOW.read_text()
    workflow = yaml.safe_load(STUDENT_WORKFLOW.read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert not [s for s in steps if "repository" in (s.get("with") or {})]   # checks out nothing but itself
    assert workflow[True]["repository_dispatch"]["types"] == [github_classroom.EVENT]   # YAML reads `on` as True
    assert workflow["permissions"] == {"checks": "write", "actions": "read", "contents": "read"}
    for step in steps:   # every reporter step reads exactly the results its runners name
        if step.get("uses", "").startswith("classroom-resources/autograding-grading-reporter@"):
            runners = step["with"]["runners"].split(",")
            assert set(step["env"]) == {f"{r.upper()}_RESULTS" for r in runners}
    # The grader's workflow: the token is used in its own repository only, and only where it must be.
    grader = yaml.safe_load(GRADER_WORKFLOW.read_text())
    job = grader["jobs"]["grade"]
    assert job["if"] == "vars.CLASSROOM_ORG != ''"   # idle in copies that are not set up (this one)
    uses_token = [s["name"] for s in job["steps"] if "secrets." in json.dumps(s)]
    assert uses_token == ["Student repositories", "Results to the students' repositories"]
    assert "secrets." not in json.dumps(next(s for s in job["steps"] if s.get("name") == "Hidden checks"))
    # It grades every assignment, installs its sandbox reliably, and can grade the last commit before a deadline.
    assert {entry["assignment"] for entry in job["strategy"]["matrix"]["include"]} == set(ASSIGNMENTS)
    sandbox = next(s["run"] for s in job["steps"] if s.get("name") == "Sandbox for student code")
    assert sandbox.index("apt-get update") < sandbox.index("apt-get install")
    clone = next(s["run"] for s in job["steps"] if s.get("name") == "Student repositories")
    assert job["env"]["DEADLINE"] == "${{ vars.CLASSROOM_DEADLINE }}" and 'rev-list -1 --before="$DEADLINE"' in clone



@pytest.mark.quick
def test_students_install_what_they_need_pinned_as_the_grader_has_it(tmp_path):
    lock = {line.split("==")[0].lower(): line for line in (ROOT / "requirements.lock").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    for assignment, needs in ((ASSIGNMENT, {"torch", "diffusers", "nbclient", "ipykernel"}),
                              (CLIP_ASSIGNMENT, {"torch", "transformers", "nbclient", "ipykernel"})):
        template = github_classroom.template(assignment, tmp_path / assignment)
        pins = [line for line in (template / "requirements.txt").read_text().splitlines() if "==" in line]
        names = {line.split("==")[0].lower() for line in pins}
        assert needs <= names and not names & {"nbgrader", "pytest", "mkdocs", "pyseccomp"}   # nothing of the grader's
        assert all(lock[line.split("==")[0].lower()] == line for line in pins)   # the grader's versions


def visible_run(template: Path, notebook: Path, tmp_path: Path, assignment: str = ASSIGNMENT) -> str:
    shutil.copy2(notebook, template / f"{assignment}.ipynb")
    output = tmp_path / "github_output"
    output.write_text("")
    run = subprocess.run([sys.executable, ".github/classroom/visible_tests.py"], cwd=template, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "GITHUB_OUTPUT": str(output)})
    assert run.returncode == 0, run.stderr[-2000:]
    return re.fullmatch(r"result=(\S+)\n", output.read_text())[1]


def test_a_push_reports_the_visible_tests_points_to_classroom(node_tools, tmp_path):
    template = github_classroom.template(ASSIGNMENT, tmp_path / "template")
    total = ASSIGNMENTS[ASSIGNMENT].points
    visible = sum(ASSIGNMENTS[ASSIGNMENT].visible_tests.values())
    correct = visible_run(template, build(variant_with(), tmp_path / "correct.ipynb"), tmp_path)
    run, points = reporter(visible=correct)
    assert run.returncode == 0 and points == f"{visible:g}/{total:g}", run.stdout

    slip = visible_run(template, build(MISTAKES["cfg_common_mistake"][0], tmp_path / "slip.ipynb"), tmp_path)
    failed = {t["name"] for t in json.loads(base64.b64decode(slip))["tests"] if t["status"] != "pass"}
    assert failed == {"test_apply_cfg_w0", "test_apply_cfg_w1", "test_cfg_norms"}   # the norms use apply_cfg
    lost = sum(ASSIGNMENTS[ASSIGNMENT].visible_tests[name] for name in failed)
    run, points = reporter(visible=slip)
    assert run.returncode == 1 and points == f"{visible - lost:g}/{total:g}"   # a red run, partial points

    stub = visible_run(template, build(HOSTILE["untouched_stubs"][0], tmp_path / "stub.ipynb"), tmp_path)
    assert reporter(visible=stub)[1] == f"0/{total:g}"


def test_lesson2_pushes_report_its_visible_tests_with_the_library_beside_the_notebook(node_tools, tmp_path):
    lesson2 = ASSIGNMENTS[CLIP_ASSIGNMENT]
    template = github_classroom.template(CLIP_ASSIGNMENT, tmp_path / "template")
    assert (template / student_library.wheel_name()).exists()
    visible, total = sum(lesson2.visible_tests.values()), lesson2.points
    correct = visible_run(template, build_clip(CLIP_CORRECT["reference_like"], tmp_path / "c.ipynb"), tmp_path,
                          CLIP_ASSIGNMENT)
    run, points = reporter(visible=correct)
    assert run.returncode == 0 and points == f"{visible:g}/{total:g}", run.stdout
    stub = visible_run(template, build_clip(None, tmp_path / "s.ipynb"), tmp_path, CLIP_ASSIGNMENT)
    assert reporter(visible=stub)[1] == f"0/{total:g}"


def commit(clone: Path, notebook_variant=None, message="work") -> str:
    if notebook_variant is not None:
        build(notebook_variant, clone / f"{ASSIGNMENT}.ipynb")
    else:
        clone.mkdir(parents=True, exist_ok=True)
        (clone / "README.md").write_text("nothing yet\n")
    if not (clone / ".git").exists():
        subprocess.run([*GIT, "init", "-q", str(clone)], check=True)
    subprocess.run([*GIT, "-C", str(clone), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(clone), "commit", "-q", "-m", message], check=True)
    return subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def grade_and_collect(clones: Path, graded: Path, outbox: Path, tiny_pipeline_dir: Path) -> list[list[str]]:
    """The grader workflow's two Python steps, as it runs them."""
    shutil.rmtree(outbox, ignore_errors=True)
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(clones), "--assignment", ASSIGNMENT,
                          "--out", str(graded), "--quiet", "--workers", "2", "--sd-model", str(tiny_pipeline_dir),
                          "--sd-device", "cpu"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    run = subprocess.run([sys.executable, "-m", "autograder", "classroom-payloads", str(graded), "--assignment",
                          ASSIGNMENT, "--clones", str(clones), "--prefix", PREFIX, "--outbox", str(outbox)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return [line.split("\t") for line in (outbox / "manifest.tsv").read_text().splitlines()]


def test_hidden_results_reach_classroom_once_per_change(node_tools, tmp_path, tiny_pipeline_dir):
    clones, graded, outbox = tmp_path / "clones", tmp_path / "graded", tmp_path / "outbox"
    commits = {"alice": commit(clones / "alice", variant_with()),
               "bob": commit(clones / "bob", MISTAKES["cfg_common_mistake"][0]),
               "carol": commit(clones / "carol")}
    rows = grade_and_collect(clones, graded, outbox, tiny_pipeline_dir)
    assert sorted(row[0] for row in rows) == [PREFIX + name for name in sorted(commits)]
    hidden_names = [c["name"] for c in json.loads((graded / ASSIGNMENT / "bob" / report.OUTCOME_FILE).read_text())
                    ["checks"] if not c.get("visible")]
    for repository, body_path, pending, sent, graded_commit, status_path in rows:
        student = repository.removeprefix(PREFIX)
        body = json.loads(Path(body_path).read_text())
        assert body["event_type"] == github_classroom.EVENT and body["client_payload"]["commit"] == commits[student]
        assert graded_commit == commits[student]   # the commit status goes on the commit that was graded
        assert not [name for name in hidden_names if name in json.dumps(body)]   # totals only, by default
        outcome = json.loads((graded / ASSIGNMENT / student / report.OUTCOME_FILE).read_text())
        score, maximum = report.outcome_totals(outcome)
        run, points = reporter(hidden=body["client_payload"]["result"])
        assert points == f"{score:g}/{maximum:g}", run.stdout
        assert run.returncode == (0 if score == maximum else 1)
        status = json.loads(Path(status_path).read_text())
        assert status["context"] == github_classroom.STATUS_CONTEXT and f"{score:g}/{maximum:g}" in status["description"]
        assert status["state"] == ("success" if score == maximum else "failure") and len(status["description"]) <= 140
        Path(pending).rename(sent)   # what the workflow does once GitHub accepted the event
    assert reporter(hidden=json.loads((outbox / f"{PREFIX}alice.json").read_text())["client_payload"]["result"])[1] \
        == "30/30"
    bob = json.loads(base64.b64decode(json.loads((outbox / f"{PREFIX}bob.json").read_text())
                                      ["client_payload"]["result"]))
    assert any(t["name"].startswith("apply_cfg:") and t["status"] == "fail" for t in bob["tests"])
    carol = json.loads(base64.b64decode(json.loads((outbox / f"{PREFIX}carol.json").read_text())
                                        ["client_payload"]["result"]))
    assert carol["status"] == "error" and "no notebook" in carol["tests"][0]["message"]

    assert grade_and_collect(clones, graded, outbox, tiny_pipeline_dir) == []   # nothing new: nothing sent
    commits["bob"] = commit(clones / "bob", variant_with(), "fixed apply_cfg")
    rows = grade_and_collect(clones, graded, outbox, tiny_pipeline_dir)
    assert [row[0] for row in rows] == [f"{PREFIX}bob"]
    body = json.loads(Path(rows[0][1]).read_text())
    assert body["client_payload"]["commit"] == commits["bob"]
    assert reporter(hidden=body["client_payload"]["result"])[1] == "30/30"


@pytest.mark.quick
def test_every_check_sent_by_name_only_when_asked(tmp_path):
    outcome = {"assignment": ASSIGNMENT, "checks": [
        {"name": "apply_cfg: w=0 returns the unconditional prediction", "outcome": "passed", "score": 1,
         "max_score": 1, "message": "", "visible": True},
        {"name": "apply_cfg: secret check", "outcome": "failed", "score": 0, "max_score": 2, "message": "hint"},
        {"name": "generate_guidance_sweep: on a GPU", "outcome": "not_run", "score": 0, "max_score": 0,
         "message": "no GPU"}]}
    totals = json.dumps(github_classroom.hidden_result(outcome, "totals"))
    assert "secret check" not in totals and "hint" not in totals and "w=0 returns" in totals
    every = github_classroom.hidden_result(outcome, "visible")
    assert [t["name"] for t in every["tests"]][1] == "apply_cfg: secret check" and every["max_score"] == 3
    assert [t["status"] for t in every["tests"]] == ["pass", "fail", "error"]


def test_visible_test_points_are_those_of_the_checks_that_ask_the_same():
    import nbformat

    assignment = ASSIGNMENTS[ASSIGNMENT]
    notebook = nbformat.read(assignment.release_notebook, as_version=4)
    test_cells = {c.metadata["nbgrader"]["grade_id"] for c in notebook.cells
                  if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
                  and not c.metadata["nbgrader"]["grade_id"].startswith("hidden_")}
    assert set(assignment.visible_tests) == test_cells
    mirrored = sum(float(points) for path in assignment.checks_dir.glob("test_*.py")
                   for points in re.findall(r'@check\(.*?points=([\d.]+), visible=True\)', path.read_text()))
    assert sum(assignment.visible_tests.values()) == mirrored == 7
