"""The grader on three corpora built from the released notebook, through the real CLI and sandbox."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.intake.discover import discover
from tests.sandbox_processes import process_table, zygote_forks
from tests.submissions import (ASSIGNMENT, CORRECT, HIDDEN_CHECK, HOSTILE, MISTAKES, ROOT, build, sweep_at_size,
                               variant_with, write_corpus)

FULL = {name: float(points) for name, points in ASSIGNMENTS[ASSIGNMENT].functions.items()}
CHECKS = sum(len(re.findall(r"^@check\(", path.read_text(), re.M))
             for path in ASSIGNMENTS[ASSIGNMENT].checks_dir.glob("test_*.py"))   # 28 today


def per_function(results: dict) -> dict[str, float]:
    scores = {name: 0.0 for name in FULL}
    for test in results["tests"]:
        scores[test["name"].split(":")[0]] += test["score"]
    return scores


@pytest.fixture(scope="module")
def graded(tmp_path_factory, tiny_pipeline_dir):
    corpus = tmp_path_factory.mktemp("corpus")
    out = tmp_path_factory.mktemp("graded")
    for name, variants in (("correct", CORRECT), ("mistakes", MISTAKES), ("hostile", HOSTILE)):
        write_corpus(corpus / name, variants)
    scratch = tmp_path_factory.mktemp("grader-tmp")   # the grader's temporary files, to see that none stay
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(corpus / "correct"), str(corpus / "mistakes"),
                          str(corpus / "hostile"), "--out", str(out), "--workers", "2", "--call-timeout", "5",
                          "--cell-timeout", "5", "--sandbox", "bwrap", "--quiet", "--sd-model", str(tiny_pipeline_dir), "--sd-device", "cpu"], capture_output=True, text=True, timeout=1200,
                         env={**__import__("os").environ, "TMPDIR": str(scratch)})
    elapsed = time.monotonic() - started
    return {"run": run, "out": out, "elapsed": elapsed, "corpus": corpus, "scratch": scratch}


def results_of(graded, name) -> dict:
    return json.loads((graded["out"] / ASSIGNMENT / name / "results.json").read_text())


def report_of(out, name, report="results.json"):
    """A student's report in a --out folder (DIR/<assignment>/<student>/)."""
    path = out / ASSIGNMENT / name / report
    return json.loads(path.read_text()) if report.endswith(".json") else path.read_text()


def test_grader_exits_cleanly_and_writes_every_report(graded):
    run = graded["run"]
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    expected = set(CORRECT) | set(MISTAKES) | set(HOSTILE)
    assert {p.name for p in (graded["out"] / ASSIGNMENT).iterdir() if p.is_dir()} == expected
    csv_lines = (graded["out"] / ASSIGNMENT / "grades.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(expected)
    assert "cross_attention: keys and values come from the text, not the spatial input" in csv_lines[0]


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_variants_get_full_marks(graded, name):
    results = results_of(graded, name)
    assert per_function(results) == FULL, [t for t in results["tests"] if t["status"] != "passed"]
    assert results["score"] == sum(FULL.values())


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistakes_lose_points_on_their_function_only(graded, name):
    _, function = MISTAKES[name]
    scores = per_function(results_of(graded, name))
    assert scores[function] < FULL[function]
    other = next(f for f in FULL if f != function)
    assert scores[other] == FULL[other]


def test_a_missing_module_is_named_with_what_is_available(graded):
    messages = {t["output"] for t in results_of(graded, "imports_a_missing_module")["tests"]
                if t["name"].startswith("apply_cfg")}
    assert messages and all("the grading environment has no jax" in m and "einops" in m for m in messages)


def test_one_generality_slip_costs_one_check(graded):
    # Scaling by the values' width is right whenever d_v == d_k: only the check for d_v != d_k may fail.
    failed = [t["name"] for t in results_of(graded, "scaled_by_value_width")["tests"] if t["status"] == "failed"]
    assert failed == ["cross_attention: works when the values are wider or narrower than the keys (d_v != d_k)"]


def test_feedback_names_no_folder_of_the_grader(graded, tiny_pipeline_dir):
    grader_folders = [str(tiny_pipeline_dir), str(ROOT), str(graded["scratch"]), str(Path.home())]
    for student in [*CORRECT, *MISTAKES]:   # hostile ones print paths of their own making
        for report in ("results.json", "feedback.md"):
            text = (graded["out"] / ASSIGNMENT / student / report).read_text()
            assert not [folder for folder in grader_folders if folder in text], (student, report)
    assert tiny_pipeline_dir.name in json.dumps(results_of(graded, "einsum"))   # still says which pipeline graded it

@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_submissions_earn_no_false_credit(graded, name):
    _, honest_maximum = HOSTILE[name]
    results = results_of(graded, name)
    assert results["score"] <= honest_maximum, [t["name"] for t in results["tests"] if t["score"]]
    assert all(t["status"] in ("passed", "failed") for t in results["tests"])
    # A file that is no notebook at all is not run; it is out of the assignment's points all the same.
    assert len(results["tests"]) == (0 if HOSTILE[name][0].suffix != ".ipynb" else CHECKS)


@pytest.fixture(scope="module")
def graded_without_namespaces(tmp_path_factory, tiny_pipeline_dir, others_can_run_python):
    """The hostile corpus and one correct notebook graded where no namespace can be made (as in Docker on
    Gradescope): bubblewrap fails there, and the grader picks its namespace-free mode by itself."""
    corpus = tmp_path_factory.mktemp("corpus-nons")
    out = tmp_path_factory.mktemp("graded-nons")
    write_corpus(corpus / "hostile", HOSTILE)
    write_corpus(corpus / "correct", {"correct": variant_with()})
    run = subprocess.run([sys.executable, "-m", "tests.no_namespaces", sys.executable, "-m", "autograder", "grade",
                          str(corpus / "hostile"), str(corpus / "correct"), "--out", str(out), "--workers", "2",
                          "--call-timeout", "5", "--cell-timeout", "5", "--quiet", "--sd-model", str(tiny_pipeline_dir),
                          "--sd-device", "cpu"], capture_output=True, text=True, timeout=1200, cwd=ROOT)
    return {"run": run, "out": out}


def test_without_namespaces_the_hostile_corpus_scores_as_under_bubblewrap(graded, graded_without_namespaces):
    run = graded_without_namespaces["run"]
    assert run.returncode == 0 and "(sandbox: uid)" in run.stdout, run.stdout[-2000:] + run.stderr[-3000:]
    assert report_of(graded_without_namespaces["out"], "correct")["score"] == sum(FULL.values())
    for name in HOSTILE:
        confined = report_of(graded_without_namespaces["out"], name)
        assert [(t["name"], t["score"]) for t in confined["tests"]] == \
            [(t["name"], t["score"]) for t in results_of(graded, name)["tests"]], name


def test_without_namespaces_hidden_checks_stay_unreadable(graded_without_namespaces):
    secret = HIDDEN_CHECK.read_text()
    results = report_of(graded_without_namespaces["out"], "leaks_hidden_checks")
    shown = json.dumps(results)
    assert "LEAK" in shown and "Permission denied" in shown   # the attempt ran, and was refused
    assert secret.splitlines()[0][:40] not in shown
    assert not any("no sandbox" in json.dumps(report_of(graded_without_namespaces["out"], n)) for n in HOSTILE)


def test_without_any_confinement_the_grader_refuses_unless_told(tmp_path, others_can_run_python):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    place = Path(tempfile.mkdtemp(prefix="refused-"))   # somewhere an unprivileged grader can read and write
    try:
        grader = place / "grader"   # a copy an unprivileged user can read (this one's checks are root's)
        for folder in ("autograder", "text_to_image", "tests"):
            shutil.copytree(ROOT / folder, grader / folder, ignore=shutil.ignore_patterns("__pycache__"))
        notebook = build(variant_with(), place / f"{ASSIGNMENT}.ipynb")
        subprocess.run(["chmod", "-R", "a+rX", str(place)], check=True)
        place.chmod(0o777)
        # Not root and no namespaces: neither confinement is possible.
        refused = subprocess.run([sys.executable, "-m", "tests.no_namespaces", "setpriv", "--reuid", "65534",
                                  "--regid", "65534", "--clear-groups", sys.executable, "-m", "autograder", "grade",
                                  str(notebook), "--out", str(place / "out"), "--quiet"],
                                 capture_output=True, text=True, cwd=grader, timeout=300)
        assert refused.returncode == 2 and "cannot be confined" in refused.stderr, refused.stderr[-2000:]
        assert not (place / "out").exists()
    finally:
        shutil.rmtree(place)
    # Told explicitly, it grades unconfined: the warning is the instructor's, never in a student's report.
    unsafe = subprocess.run([sys.executable, "-m", "autograder", "grade", str(build(variant_with(), tmp_path / "in" /
                             f"{ASSIGNMENT}.ipynb")), "--out", str(tmp_path / "out"), "--quiet", "--unsafe-no-sandbox"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert unsafe.returncode == 0 and "WARNING: no sandbox" in unsafe.stderr
    assert "(sandbox: none)" in unsafe.stdout
    [student_side] = (tmp_path / "out" / ASSIGNMENT).glob("*/results.json")
    assert student_side.read_text().count('"passed"') > 0 and "sandbox" not in student_side.read_text().lower()


def test_hostile_files_do_not_escape(graded):
    assert list(graded["scratch"].iterdir()) == []   # no sandbox folder or worker scratch left behind
    out = graded["out"]
    assert not (out.parent / "results.json").exists()
    assert report_of(out, "writes_results")["score"] == 0
    assert (out / ASSIGNMENT / "grades.csv").read_text().startswith("student,assignment,")


def test_messages_explain_the_failure_without_hidden_inputs(graded):
    messages = {t["name"]: t["output"] for t in results_of(graded, "cfg_common_mistake")["tests"]}
    assert "starts from noise_uncond, not noise_cond" in messages["apply_cfg: w=1 returns the conditional prediction"]
    no_scaling = {t["name"]: t["output"] for t in results_of(graded, "no_scaling")["tests"]}
    assert "not scaled at all" in no_scaling["cross_attention: scores are scaled by 1/sqrt(d_k)"]
    loops = [t for t in results_of(graded, "infinite_loops")["tests"] if t["name"].startswith(("cross", "apply"))]
    assert len(loops) == 16 and all("took longer than 5 s" in t["output"] for t in loops)
    reused = {t["name"]: t["output"] for t in results_of(graded, "sweep_reuses_generator")["tests"]}
    assert "call 2 was not freshly seeded" in reused["generate_guidance_sweep: gives every call a fresh generator "
                                                     "seeded with seed"]
    unseeded = {t["name"]: t["score"] for t in results_of(graded, "sweep_without_generator")["tests"]}
    assert unseeded["generate_guidance_sweep: the same seed gives identical images when run again"] == 0
    assert unseeded["generate_guidance_sweep: each image equals the trusted pipeline's image for its scale"] == 0
    seeded_globally = [t for t in results_of(graded, "sweep_seeds_globally")["tests"] if t["status"] != "passed"]
    assert [t["name"] for t in seeded_globally] == ["generate_guidance_sweep: gives every call a fresh generator "
                                                    "seeded with seed"]
    assert "torch's global generator" in seeded_globally[0]["output"]
    for name, hard_coded in (("sweep_other_steps", 15), ("sweep_hard_codes_default_steps", 30)):
        steps = {t["name"]: t["output"] for t in results_of(graded, name)["tests"]}
        assert f"num_inference_steps=[{hard_coded}]" in steps["generate_guidance_sweep: passes the prompt and "
                                                              "num_inference_steps through"]
    timing = {t["name"]: t["output"] for t in results_of(graded, "einsum")["tests"]}
    assert "5 calls, cpu" in timing["generate_guidance_sweep: finishes within the time budget"]
    empty = results_of(graded, "empty_file")
    assert "empty" in empty["output"]


def test_answers_written_around_the_runner_are_the_students_failure(graded):
    def messages(name, prefix):
        return [t["output"] for t in results_of(graded, name)["tests"] if t["name"].startswith(prefix)]

    assert all("larger than its bytes" in m for m in messages("array_larger_than_its_bytes", "cross_attention"))
    assert all("disallowed dtype" in m for m in messages("object_array_answer", "cross_attention"))
    assert all("not a message" in m for m in messages("answer_not_a_message", "cross_attention"))
    assert all("cannot read" in m or "unreadable" in m for m in messages("deeply_nested_answer", "cross_attention"))
    images = {t["name"]: t for t in results_of(graded, "one_dimensional_images")["tests"]}
    assert "is not an image the pipeline returned" in images[
        "generate_guidance_sweep: returns one RGB image per scale at the pipeline's resolution"]["output"]
    assert all("CPU torch.Generator" in m for m in messages("bad_generator_state", "generate_guidance_sweep"))
    assert all(t["score"] == 0 for t in results_of(graded, "made_up_images")["tests"]
               if t["name"].startswith("generate_guidance_sweep"))
    assert all("took longer than 5 s" in m for m in messages("slow_trickle_of_messages", "generate_guidance_sweep"))


def markdown_outside_code(text: str) -> list[str]:
    """The lines of a Markdown text that are not inside a fenced code block (a fence closes only with a
    run of backticks at least as long as the one that opened it)."""
    outside, fence = [], None
    for line in text.splitlines():
        run = re.match(r"\s*(`{3,})", line)
        if fence is None and run:
            fence = run.group(1)
        elif fence is not None and run and len(run.group(1)) >= len(fence) and not line.strip().strip("`"):
            fence = None
        elif fence is None:
            outside.append(line.strip())
    return outside


def test_student_text_cannot_forge_or_flood_a_report(graded):
    feedback = (graded["out"] / ASSIGNMENT / "fake_score_in_messages" / "feedback.md").read_text()
    rendered = markdown_outside_code(feedback)
    assert [line for line in rendered if line.startswith("**Score:")] == ["**Score: 20 / 30**"]
    assert not [line for line in rendered if "PASS** everything" in line or "<script>" in line]
    huge = graded["out"] / ASSIGNMENT / "huge_and_nested_cells"
    assert results_of(graded, "huge_and_nested_cells")["score"] == sum(FULL.values())
    assert sum(p.stat().st_size for p in huge.iterdir()) < 200_000
    assert re.search(r"\.\.\. and 29\d\d more", results_of(graded, "huge_and_nested_cells")["output"])


def test_grading_time_is_bounded(graded):
    # 40 submissions, some hanging until their 5 s deadline, on 2 workers
    assert graded["elapsed"] < 600


@pytest.mark.quick
def test_discover_uses_student_folders_and_file_names(tmp_path):
    (tmp_path / "submitted" / "ana" / "hw1").mkdir(parents=True)
    (tmp_path / "submitted" / "ana" / "hw1" / f"{ASSIGNMENT}.ipynb").write_text("{}")
    (tmp_path / "loose.ipynb").write_text("{}")
    found = {s.student: s for s in discover([str(tmp_path / "submitted"), str(tmp_path / "loose.ipynb")])}
    assert set(found) == {"ana", "loose"} and {s.assignment for s in found.values()} == {ASSIGNMENT}
    assert found["loose"].notes == [f"expected {ASSIGNMENT}.ipynb, found loose.ipynb: graded that one"]


def run_pytest_checks(notebook, *options):
    return subprocess.run([sys.executable, "-m", "pytest", "autograder", f"--submission={notebook}", "-q",
                           "-p", "no:cacheprovider", *options], capture_output=True, text=True, cwd=str(ROOT))


def test_the_committed_solution_gets_full_marks_and_the_release_none_through_plain_pytest(tiny_pipeline_dir, tmp_path):
    """The pytest entry point (CI's junit report) on the two notebooks the course commits."""
    from tests.conftest import RELEASE_NOTEBOOK, SOLUTION_NOTEBOOK

    cpu_pipeline = ["--sd-model", str(tiny_pipeline_dir), "--sd-device", "cpu"]
    junit = tmp_path / "junit.xml"
    for notebook, expected, extra in ((SOLUTION_NOTEBOOK, sum(FULL.values()), [f"--junitxml={junit}"]),
                                      (RELEASE_NOTEBOOK, 0.0, [])):
        results_path = tmp_path / f"{notebook.parent.parent.name}.json"
        run = run_pytest_checks(notebook, *cpu_pipeline, "--results-json", str(results_path), *extra)
        checks = json.loads(results_path.read_text())["checks"]
        assert len(checks) == CHECKS and sum(c["score"] for c in checks) == expected, notebook
        if expected:
            assert run.returncode == 0, run.stdout[-2000:]
        else:
            assert run.returncode == 1 and f"{CHECKS} failed" in run.stdout, run.stdout[-1500:]
            # a student's failure is reported by its message: no traceback through the checks' files
            failures = run.stdout.split("short test summary info")[0]
            assert "NotImplementedError" in failures and ".py:" not in failures, failures[-1500:]
    assert f'tests="{CHECKS}"' in junit.read_text() and 'failures="0"' in junit.read_text()


needs_no_gpu = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")


@needs_no_gpu
def test_without_a_gpu_exercise_4_is_graded_on_the_stand_in(tmp_path):
    notebook = build(variant_with(), tmp_path / "in" / "ana" / f"{ASSIGNMENT}.ipynb")
    # Right for bk-sdm-small, whose own size is 512: the stand-in must not mark it down for its own 64.
    build(sweep_at_size(512), tmp_path / "in" / "bo" / f"{ASSIGNMENT}.ipynb")
    stand_in = tmp_path / "stand-in"   # built where the grader runs, on first use
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "in"), "--out",
                          str(tmp_path / "out"), "--quiet"], capture_output=True, text=True,
                         env={**__import__("os").environ, "AUTOGRADER_STAND_IN": str(stand_in)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert (stand_in / "model_index.json").exists()
    for student in ("ana", "bo"):
        results = report_of(tmp_path / "out", student)
        sweep = [t for t in results["tests"] if t["name"].startswith("generate_guidance_sweep:")]
        assert len(sweep) == 9 and all(t["status"] == "passed" and "stand-in pipeline" in t["output"] for t in sweep)
        assert results["score"] == sum(FULL.values())
    assert "height=512, the lesson model's own" in sweep[0]["output"]
    with open(tmp_path / "out" / ASSIGNMENT / "grades.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 2
    for row in rows:
        assert "not run" not in row.values() and float(row["total"]) == float(row["max_total"]) == sum(FULL.values())
    assert notebook.exists()


@pytest.mark.quick
@needs_no_gpu
def test_require_gpu_turns_not_run_into_a_grader_error(tmp_path):
    build(variant_with(), tmp_path / "in" / "ana" / f"{ASSIGNMENT}.ipynb")
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "in"), "--out",
                          str(tmp_path / "out"), "--quiet", "--require-gpu"], capture_output=True, text=True)
    assert run.returncode == 2
    results = report_of(tmp_path / "out", "ana")
    errors = [t for t in results["tests"] if t.get("extra_data", {}).get("outcome") == "grader_error"]
    assert len(errors) == 9 and all(t["max_score"] == 1 or t["max_score"] == 2 for t in errors)
    assert f"grader errors on 1 submissions, not graded: {ASSIGNMENT}/ana" in run.stderr
    log = (tmp_path / "out" / "grader-errors.log").read_text()   # the instructor sees why, with the traceback
    assert f"== {ASSIGNMENT}/ana" in log and "--require-gpu is set but" in log and "line " in log


def test_shipped_samples_are_built_from_the_current_release(tmp_path):
    from tests.submissions import SAMPLES_DIR, write_samples

    written = write_samples(tmp_path)
    assert len(written) == len(list(SAMPLES_DIR.rglob("*.ipynb")))
    for path in written:
        assert path.read_bytes() == (SAMPLES_DIR / path.relative_to(tmp_path)).read_bytes(), (
            f"samples/ is stale for {path.relative_to(tmp_path)}: run `python -m tests.submissions`")


def grade_folder(folder, out, *options):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out), "--quiet",
                           "--workers", "2", *options], capture_output=True, text=True, timeout=600)


@pytest.fixture
def small_class(tmp_path):
    folder = tmp_path / "submitted"
    write_corpus(folder, {"right": CORRECT["einsum"], "slip": MISTAKES["cfg_common_mistake"][0],
                          "stub": HOSTILE["untouched_stubs"][0]})
    return folder


def test_a_rerun_grades_only_what_is_missing_or_changed(small_class, tmp_path):
    out = tmp_path / "graded"
    graded = out / ASSIGNMENT
    assert grade_folder(small_class, out).returncode == 0
    stamps = {name: (graded / name / "outcome.json").stat().st_mtime_ns for name in ("right", "slip", "stub")}
    rerun = grade_folder(small_class, out)
    assert rerun.returncode == 0 and "keeping 3 results" in rerun.stderr
    assert {name: (graded / name / "outcome.json").stat().st_mtime_ns for name in stamps} == stamps
    # An interrupted run leaves a submission without results; an edited notebook must be regraded.
    shutil.rmtree(graded / "stub")
    build(variant_with(), small_class / "slip" / "text_conditioning_guidance.ipynb")
    rerun = grade_folder(small_class, out)
    assert "keeping 1 results" in rerun.stderr
    assert (graded / "right" / "outcome.json").stat().st_mtime_ns == stamps["right"]
    assert (graded / "slip" / "outcome.json").stat().st_mtime_ns != stamps["slip"]
    assert report_of(out, "slip")["score"] == sum(FULL.values())
    assert report_of(out, "stub")["score"] == 0
    assert len((graded / "grades.csv").read_text().splitlines()) == 4


def test_grading_twice_gives_byte_identical_scores(small_class, tmp_path):
    out = tmp_path / "graded"
    assert grade_folder(small_class, out).returncode == 0
    first_csv = (out / ASSIGNMENT / "grades.csv").read_bytes()
    first = {name: report_of(out, name) for name in ("right", "slip", "stub")}
    forced = grade_folder(small_class, out, "--force")
    assert forced.returncode == 0 and "keeping" not in forced.stderr
    assert (out / ASSIGNMENT / "grades.csv").read_bytes() == first_csv
    def verdicts(results):   # the time-budget check reports the seconds it measured: those may differ
        return [(t["name"], t["score"], "" if t["name"].endswith("within the time budget") else t["output"])
                for t in results["tests"]]

    for name, results in first.items():
        assert verdicts(report_of(out, name)) == verdicts(results)


def test_cli_habits(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, timeout=120)

    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("python -m autograder ")
    notebook = build(variant_with(), tmp_path / f"{ASSIGNMENT}.ipynb")
    for options, message in ((["--workers", "0"], "--workers must be at least 1"),
                             (["--timeout", "0.5"], "--timeout must be at least 1"),
                             (["--call-timeout", "0"], "--call-timeout must be at least 1")):
        run = cli("grade", str(notebook), "--out", str(tmp_path / "out"), *options)
        assert run.returncode != 0 and run.stderr.strip() == f"error: {message} (got {options[1]})"
    script = tmp_path / "answer.py"
    script.write_text("def apply_cfg(u, c, w):\n    return u + w * (c - u)\n")
    link = tmp_path / "linked.ipynb"
    link.symlink_to(notebook)
    for given, message in ((script, "is not a notebook"), (link, "is a symbolic link")):
        run = cli("grade", str(given), "--out", str(tmp_path / "out"))
        assert run.returncode != 0 and message in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()   # refused before anything is written


def test_pytest_plugins_installed_beside_the_grader_stay_out_of_grading(tmp_path, tiny_pipeline_dir):
    # A plugin any package may register (pytest11); this one would pass every check it sees.
    site = tmp_path / "site"
    (site / "grade_everything-1.0.dist-info").mkdir(parents=True)
    (site / "grade_everything-1.0.dist-info" / "METADATA").write_text("Name: grade-everything\nVersion: 1.0\n")
    (site / "grade_everything-1.0.dist-info" / "entry_points.txt").write_text(
        "[pytest11]\ngrade_everything = grade_everything\n")
    (site / "grade_everything.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(os.environ['PLUGIN_MARKER']).write_text('loaded')\n"
        "def pytest_runtest_call(item):\n"
        "    item.runtest = lambda: None\n")
    marker = tmp_path / "plugin-was-loaded"
    build(HOSTILE["untouched_stubs"][0], tmp_path / "in" / "stub" / f"{ASSIGNMENT}.ipynb")
    env = {**__import__("os").environ, "PYTHONPATH": str(site), "PLUGIN_MARKER": str(marker)}
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                          "--quiet", "--sd-model", str(tiny_pipeline_dir), "--sd-device", "cpu"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    probe = subprocess.run([sys.executable, "-c", "from importlib.metadata import entry_points; "
                            "print([e.name for e in entry_points(group='pytest11')])"], capture_output=True, text=True,
                           env=env)
    assert "grade_everything" in probe.stdout   # pytest would load it in any other session
    assert not marker.exists()
    assert report_of(tmp_path / "out", "stub")["score"] == 0


@pytest.mark.quick
def test_workers_are_forked_from_one_template_that_has_torch_loaded_and_the_pipeline_server_starts_at_once(
        tmp_path, tiny_pipeline_dir):
    from autograder.grading.worker import GradingWorker
    from autograder.pipeline import server as pipeline_server
    from autograder.pipeline.spec import PipelineSpec

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    workers = [GradingWorker(tmp_path / f"w{i}.log", threads=1) for i in range(2)]
    server = pipeline_server.Server(tmp_path, PipelineSpec(str(tiny_pipeline_dir), "cpu"), False, {})
    try:
        for worker in workers:
            worker._start()
        parents = {parent(w.process.pid) for w in workers}
        assert len(parents) == 1 and os.getpid() not in parents   # one template, not this process
        assert "libtorch" in Path(f"/proc/{parents.pop()}/maps").read_text()   # imported before the fork
        # The server is a Python of its own, started by the grade command before the template had imported
        # anything: its diffusers import need not wait for the template's.
        assert parent(server.process.pid) == os.getpid()
        for worker in workers:   # each still answers as a worker of its own
            worker.requests.send_bytes(b'{"assignment": "no such assignment"}')
            assert worker._read_reply(60)["returncode"] == -1
    finally:
        for worker in workers:
            worker.close()
        server.close()
    assert all(w.process is None for w in workers) and not server.process.is_alive()


def test_the_templates_imports_leave_the_collector_on_and_their_objects_frozen():
    # Imported with the collector off (template_imports.py); a worker forked after must collect as usual, and its
    # collections must not walk torch's and pytest's objects.
    from autograder.grading import template

    assert "autograder.grading.template_imports" in template.PRELOADED
    probe = subprocess.run([sys.executable, "-c", "import gc, autograder.grading.template_imports, torch, pytest; "
                            "print(gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects()))"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    enabled, frozen, tracked = probe.stdout.split()
    assert enabled == "True" and int(frozen) > 100_000 and int(tracked) < int(frozen) / 10, probe.stdout + probe.stderr


def checks_without_timings(outcome: dict) -> list:
    """Each check's verdict and message, without the seconds a time-budget message reports."""
    return [(c["name"], c["outcome"], c["score"], re.sub(r"\d+\.\d+ s", "T s", c["message"])) for c in outcome["checks"]]


@pytest.mark.quick
def test_a_worker_grades_a_run_of_submissions_in_one_session_as_each_would_be_graded_alone(tmp_path, tiny_pipeline_dir):
    """One pytest session serves a run of one assignment's submissions (grading/session_of_submissions.py):
    nothing of one submission reaches the next, another assignment gets a session of its own, and a
    submission graded after others gets what it gets graded first, in a fresh worker."""
    from autograder.grading.worker import GradingWorker
    from tests.clip_submissions import CLIP_ASSIGNMENT, CLIP_CORRECT, build_clip

    unseeded = build(MISTAKES["sweep_without_generator"][0], tmp_path / "a" / f"{ASSIGNMENT}.ipynb")
    correct = build(variant_with(), tmp_path / "b" / f"{ASSIGNMENT}.ipynb")
    clip = build_clip(CLIP_CORRECT["reference_like"], tmp_path / "c" / f"{CLIP_ASSIGNMENT}.ipynb")
    options = ["--sd-model", str(tiny_pipeline_dir), "--sd-device", "cpu"]
    log = tmp_path / "worker.log"
    worker = GradingWorker(log, threads=1)
    try:
        outcomes = [worker.grade(notebook, assignment, options, 300) for notebook, assignment in
                    ((unseeded, ASSIGNMENT), (correct, ASSIGNMENT), (clip, CLIP_ASSIGNMENT), (correct, ASSIGNMENT))]
        # A grader error outside the checks, in the middle of a submission, costs that submission only: its
        # sandboxed processes end before the answer, and the next submission gets a session of its own.
        buggy = shutil.copy(correct, (tmp_path / "grader_bug").mkdir() or tmp_path / "grader_bug" / correct.name)
        worker.requests.send_bytes(json.dumps({"notebook": str(buggy), "assignment": ASSIGNMENT,
                                               "options": [*options, "-p", "tests.grader_bug_plugin"],
                                               "results_json": str(tmp_path / "grader_bug" / "results.json")}).encode())
        reply = worker._read_reply(300)
        assert reply["returncode"] == -1 and "mid-submission" in reply["error"], reply
        deadline = time.monotonic() + 5   # the zygotes alone: the notebook's processes end as their pipes close
        while zygote_forks(process_table(), under=worker.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert zygote_forks(process_table(), under=worker.process.pid) == []
        outcomes.append(worker.grade(correct, ASSIGNMENT, options, 300))
    finally:
        worker.close()
    fresh = GradingWorker(None, threads=1)
    try:
        alone = fresh.grade(correct, ASSIGNMENT, options, 300)
    finally:
        fresh.close()
    assert not any(o["grader_failed"] for o in outcomes + [alone])
    notes = [" ".join(c["message"] for c in o["checks"]) for o in outcomes]
    assert "named no generator" in notes[0] and "named no generator" not in notes[1] + notes[3]
    assert sum(c["score"] for c in outcomes[0]["checks"]) < sum(FULL.values())
    assert checks_without_timings(outcomes[1]) == checks_without_timings(outcomes[3]) == checks_without_timings(alone) \
        == checks_without_timings(outcomes[4])
    assert sum(c["score"] for c in alone["checks"]) == sum(FULL.values())
    assert outcomes[2]["assignment"] == CLIP_ASSIGNMENT and all(c["outcome"] == "passed" for c in outcomes[2]["checks"])
    # sessions: the first two, Lesson 2, the fourth, the failing one, the last: five summaries for six
    text = log.read_text()
    assert len(re.findall(r"^== /", text, re.M)) == 6 and len(re.findall(r"^\d+ passed.* in [\d.]+s", text, re.M)) == 5, text[-3000:]


@pytest.mark.quick
def test_the_grade_command_itself_imports_neither_torch_nor_pytest():
    """They cost the command ~1.3 s before its first worker could start; the workers' template imports them."""
    probe = subprocess.run([sys.executable, "-c", "import sys, autograder.cli.grade, autograder.cli.merge; "
                            "print(sorted({'torch', 'pytest', 'diffusers'} & set(sys.modules)))"],
                           capture_output=True, text=True, cwd=str(ROOT))
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr[-2000:]
