"""exercises/<assignment>/ -> release/<assignment>/ (student version) and solutions/<assignment>/ (executed)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def assignments_in(course_dir: Path) -> list[str]:
    return sorted(p.name for p in (course_dir / "exercises").iterdir() if p.is_dir() and not p.name.startswith("."))


def release(course_dir: Path, assignments: list[str] | None = None, *, solutions: bool = True) -> None:
    course_dir = course_dir.resolve()
    if not (course_dir / "nbgrader_config.py").exists():
        raise SystemExit(f"error: {course_dir} has no nbgrader_config.py")
    env = dict(os.environ)
    # nbgrader runs alembic from PATH; offline unless told otherwise so a missing model fails fast.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    with tempfile.TemporaryDirectory(prefix="gradebook-") as scratch:
        database = f"--CourseDirectory.db_url=sqlite:///{scratch}/gradebook.db"  # throwaway: only to generate
        for assignment in assignments or assignments_in(course_dir):
            steps = [["generate_assignment", assignment, "--force", "--log-level=WARN", database]]
            if solutions:
                steps.append(["generate_solution", assignment, "--force", "--log-level=WARN", database])
            for step in steps:
                print(f"nbgrader {step[0]} {assignment}", flush=True)
                subprocess.run(nbgrader + step, cwd=course_dir, env=env, check=True,
                               stdout=subprocess.DEVNULL)
