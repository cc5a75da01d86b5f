"""text_to_image as students get it: the course library without the trusted versions of the pieces
they write (reference.py) and without the instructor's command line (__main__.py).

One builder serves both sides of the course: the release ships it as a wheel beside Lesson 2's
notebook, and the sandbox mounts the same files for the grading run, so what a student imports at
home is what their code meets when graded, and neither holds an answer.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import __version__

LIBRARY = "text_to_image"
LEFT_OUT = ("reference.py", "__main__.py")
# Not "text-to-image": PyPI's package of that name is somebody else's.
DISTRIBUTION = "text-to-image-lesson"
# What it needs; ranges, because Colab and laptops bring their own torch (requirements.txt pins them).
DEPENDENCIES = ("torch>=2.1", "numpy>=1.24", "transformers>=4.40", "scikit-learn>=1.3", "tqdm>=4.66",
                "matplotlib>=3.7")
SOURCE_DATE_EPOCH = "1767225600"   # fixed timestamps inside the wheel: the same sources, the same bytes


def source_dir() -> Path:
    return Path(importlib.util.find_spec(LIBRARY).origin).parent


def reference_file() -> Path:
    """The trusted implementations: never shipped, never readable from the sandbox."""
    return source_dir() / "reference.py"


def package_files() -> dict[str, bytes]:
    """Path inside the package -> contents, for every file students get."""
    root = source_dir()
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*.py"))
            if path.name not in LEFT_OUT and "__pycache__" not in path.parts}


def write_tree(destination: Path) -> Path:
    """The package as a folder: destination/text_to_image/..."""
    package = Path(destination) / LIBRARY
    for relative, contents in package_files().items():
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_bytes(contents)
    return package


def wheel_name() -> str:
    return f"{DISTRIBUTION.replace('-', '_')}-{__version__}-py3-none-any.whl"


def build_wheel(out_dir: Path) -> Path:
    """out_dir/<wheel_name()>, built by setuptools from the student tree."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="student-library-") as scratch:
        project = Path(scratch)
        write_tree(project)
        dependencies = ", ".join(f'"{d}"' for d in DEPENDENCIES)
        (project / "pyproject.toml").write_text(f"""[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "{DISTRIBUTION}"
version = "{__version__}"
description = "The text_to_image library of the lesson Text Conditioning with CLIP (student edition)"
requires-python = ">=3.10"
dependencies = [{dependencies}]

[tool.setuptools]
packages = ["{LIBRARY}"]
""")
        env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PIP_NO_INPUT": "1"}
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                                "-w", str(out_dir), str(project)], env=env, capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f"building the student library failed:\n{built.stderr[-2000:]}")
    return out_dir / wheel_name()


# What every lesson's student installs: what a graded notebook may import, a Jupyter kernel and its progress
# bars (without ipywidgets tqdm prints a warning and text bars). Each assignment adds its own
# (Assignment.packages); requirements() pins them with everything they pull in.
STUDENT_REQUIREMENTS = ("torch", "numpy", "transformers", "matplotlib", "einops", "pillow", "ipykernel", "ipywidgets")


def requirements(lock: Path, extra: tuple[str, ...] = ()) -> str:
    """requirements.txt for students: STUDENT_REQUIREMENTS (and `extra`) with their dependencies, pinned as in
    `lock`: what students need and nothing of the grader's own (nbgrader, pytest, the docs' tools)."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in Path(lock).read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.strip())] = f"{name.strip()}=={version.strip()}"
    needed, todo = set(), [canonicalize_name(n) for n in (*STUDENT_REQUIREMENTS, *extra)]
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        for text in distribution(name).requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    needed -= {"pip", "setuptools", "wheel"}   # a virtual environment's own tools
    unpinned = sorted(needed - set(pins))
    if unpinned:
        raise RuntimeError(f"{lock} pins no version of {', '.join(unpinned)}")
    return ("# The environment of the lesson, as the grader has it: pip install -r requirements.txt\n"
            + "\n".join(pins[name] for name in sorted(needed)) + "\n")
