"""CPUs freed at the end of a class go to the submissions still being graded (autograder/sandbox/cpu_share.py)."""
import json
import os
import re
import subprocess
import sys

import pytest

from autograder.sandbox import cpu_share
from tests.clip_submissions import CLIP_ASSIGNMENT, CLIP_CORRECT, build_clip
from tests.submissions import ASSIGNMENT, ROOT, build, sweep_at_size


@pytest.mark.quick
def test_the_share_splits_the_cpus_among_busy_workers(tmp_path, monkeypatch):
    share = tmp_path / "threads"
    monkeypatch.setenv(cpu_share.ENVIRONMENT, str(share))
    assert cpu_share.current() is None   # not written yet
    for busy, expected in ((4, 2), (3, 2), (2, 4), (1, 8), (16, 1), (0, 8)):
        cpu_share.write(share, busy, cpus=8)
        assert cpu_share.current() == expected
    assert not list(tmp_path.glob("*.partial"))
    monkeypatch.delenv(cpu_share.ENVIRONMENT)
    assert cpu_share.current() is None   # outside a grade command's worker nothing changes


def test_apply_sets_torchs_threads(tmp_path):
    share = tmp_path / "threads"
    cpu_share.write(share, 1, cpus=3)
    probe = ("import torch; from autograder.sandbox import cpu_share; before = torch.get_num_threads(); "
             "cpu_share.apply(); print(before, torch.get_num_threads())")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", cpu_share.ENVIRONMENT: str(share)})
    assert run.stdout.split() == ["1", "3"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: there is nothing to lend")
def test_a_slow_sweep_at_the_end_of_a_class_gets_the_idle_cpus(tmp_path, tiny_pipeline_dir):
    # Two workers, one thread each. The quick submission (Lesson 2: no pipeline, so it never waits behind the
    # sweep on the shared pipeline) ends long before the 480x480 sweeps of the slow one do.
    build_clip(CLIP_CORRECT["reference_like"], tmp_path / "in" / "quick" / f"{CLIP_ASSIGNMENT}.ipynb")
    build(sweep_at_size(480), tmp_path / "in" / "slow" / f"{ASSIGNMENT}.ipynb")
    run = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "in"), "--out",
                          str(tmp_path / "out"), "--workers", "2", "--quiet", "--sd-model", str(tiny_pipeline_dir),
                          "--sd-device", "cpu"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    tests = json.loads((tmp_path / "out" / ASSIGNMENT / "slow" / "results.json").read_text())["tests"]
    note = next(t["output"] for t in tests if t["name"].endswith("finishes within the time budget"))
    low, high = re.search(r"cpu with (\d+)(?:-(\d+))? threads?", note).groups()
    # Its worker started on its own share of the CPUs (half); once the other worker ran out of work, all of them.
    assert int(high or low) == os.cpu_count()
