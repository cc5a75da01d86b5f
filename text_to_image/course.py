"""What both lessons' notebooks share: their first cell's set-up, and the cells that hold the points of the
hidden checks. Needs nothing beyond Python's standard library (torch may not be installed yet).
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pinned(requirements: Path) -> dict[str, str]:
    """name -> version for every `name==version` line of a requirements file."""
    pins = {}
    for line in Path(requirements).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_canonical(name)] = version.strip()
    return pins


def prepare_environment(lesson_packages: tuple[str, ...], requirements: str | Path = "requirements.txt") -> list[str]:
    """Installs what this notebook needs and the environment lacks, at the versions of `requirements` (the
    grader's), and says so in one line. Returns the pip arguments it installed (none in an environment made
    from that file).

    On Colab, which brings its own torch and numpy, only the lesson's own libraries (`lesson_packages`) are
    installed at the grader's versions. Elsewhere a missing package means the environment was not made from
    requirements.txt: the whole file is installed. Without the file (next to the notebook) nothing is done.
    """
    requirements = Path(requirements)
    if not requirements.exists():
        return []
    pins = pinned(requirements)
    on_colab = "google.colab" in sys.modules
    if on_colab:
        wanted = [f"{name}=={pins[_canonical(name)]}" for name in lesson_packages
                  if _installed(name) != pins[_canonical(name)]]
    else:
        missing = sorted(name for name in pins if _installed(name) is None)
        wanted = ["-r", str(requirements)] if missing else []
    if wanted:
        print(f"Installing {' '.join(wanted)} (the versions the grader uses; a minute or more the first time)...")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *wanted], check=True)
        importlib.invalidate_caches()
    differing = [f"{name} {_installed(name)} (grader: {pins[_canonical(name)]})" for name in lesson_packages
                 if _installed(name) not in (None, pins[_canonical(name)])]
    if differing:
        print(f"Note: other versions than the grader's: {', '.join(differing)}. Your results may differ slightly.")
    return wanted


def hidden_checks(function: str, points: float) -> None:
    """The cell that holds the points of `function`'s hidden checks in the course's gradebook. Running it does
    nothing: the course grader runs the checks on your submission and writes their score here.

    nbgrader's own autograde, run without the course's configuration, would award these points to any
    notebook in which the cell merely runs; there (and only there) it fails, so that such a run gives none."""
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        raise AssertionError(f"the {points:g} points of {function}'s hidden checks come from the course grader, "
                             "not from running this cell")
