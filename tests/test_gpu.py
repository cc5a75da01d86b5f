"""Where the machine has a CUDA GPU (skipped elsewhere, saying why): Exercise 4 graded with the pipeline on the
GPU gives the CPU's verdicts, in one run and in shards that each load their own pipeline on it, merged.
tests/test_sharding.py holds the engines' command lines and test_sandbox.py keeps student code off the GPU."""
import csv
import io
import json
import subprocess
import sys

import pytest
import torch

from tests.submissions import ASSIGNMENT, CORRECT, HOSTILE, MISTAKES, ROOT, write_corpus
from tests.test_sharding import verdicts

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU on this machine (CI has none): run where a GPU is lent")

CLASS = {"lesson_generator": CORRECT["real_pipeline_arguments"],   # torch.Generator("cuda"), as the lesson makes it
         "einsum": CORRECT["einsum"], "slip": MISTAKES["cfg_common_mistake"][0],
         "seedless": MISTAKES["sweep_ignores_seed"][0], "stubs": HOSTILE["untouched_stubs"][0]}


def scores(folder):
    """Each check's name, outcome and score (verdicts() ends each list with the notebook's error, problem and notes)."""
    return {student: [check[:3] for check in checks[:-3]] for student, checks in verdicts(folder).items()}


def test_the_class_graded_on_the_gpu_in_one_run_and_in_shards_is_the_class_graded_on_the_cpu(tmp_path,
                                                                                                tiny_pipeline_dir):
    write_corpus(tmp_path / "submitted", CLASS)

    def grade(out, device, *more):
        return subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(tmp_path / "submitted"), "--out",
                                 str(tmp_path / out), "--quiet", "--sd-model", str(tiny_pipeline_dir), "--sd-device",
                                 device, *(() if device == "cpu" else ("--require-gpu",)), *more],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runs = {"cpu": grade("cpu", "cpu"), "gpu": grade("gpu", "cuda"),
            **{f"shard-{i}": grade(f"shard-{i}", "cuda", "--shard", f"{i}/2") for i in range(2)}}
    outputs = {name: run.communicate(timeout=600)[0] for name, run in runs.items()}
    assert all(run.returncode == 0 for run in runs.values()), {name: out[-3000:] for name, out in outputs.items()}
    merge = subprocess.run([sys.executable, "-m", "autograder", "merge", str(tmp_path / "shard-0"),
                            str(tmp_path / "shard-1"), "--out", str(tmp_path / "merged")], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert merge.returncode == 0, merge.stdout + merge.stderr

    gpu, merged, cpu = (tmp_path / name for name in ("gpu", "merged", "cpu"))
    assert verdicts(merged) == verdicts(gpu) and len(verdicts(gpu)) == len(CLASS)
    assert (merged / ASSIGNMENT / "grades.csv").read_bytes() == (gpu / ASSIGNMENT / "grades.csv").read_bytes()
    assert scores(gpu) == scores(cpu)   # float16 on the GPU, float32 on the CPU: the same verdicts
    for folder, device in ((gpu, "on cuda"), (merged, "on cuda"), (cpu, "on cpu")):
        notes = (folder / ASSIGNMENT / "lesson_generator" / "outcome.json").read_text()
        assert device in notes, notes[-2000:]
    totals = {row["student"]: float(row["total"])
              for row in csv.DictReader(io.StringIO((gpu / ASSIGNMENT / "grades.csv").read_text()))}
    assert totals["lesson_generator"] == totals["einsum"] > max(totals["slip"], totals["seedless"], totals["stubs"])
    sweep = json.loads((gpu / ASSIGNMENT / "seedless" / "outcome.json").read_text())["checks"]
    assert any("generate_guidance_sweep" in c["name"] and c["outcome"] == "failed" for c in sweep)
