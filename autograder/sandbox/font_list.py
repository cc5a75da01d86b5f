"""The grader's matplotlib font list, handed to each sandbox with the files it runs.

A sandbox's zygote imports matplotlib with an empty cache (its home is a fresh scratch folder), and
matplotlib then scans the machine's fonts again: 0.1-0.3 s of CPU in every sandbox's start. The list the
grader's own matplotlib made names the same files (the sandbox sees /usr and the environment where the
grader sees them); a font that is missing inside makes matplotlib scan again, as it would have anyway.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def cache_folder() -> Path:
    """Where matplotlib keeps this machine's cache on Linux (matplotlib.get_cachedir's rules, without
    importing matplotlib into the grading process)."""
    configured = os.environ.get("MPLCONFIGDIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib"


def copy_into(folder: Path) -> list[str]:
    """Copies the font lists found there (one per matplotlib version: fontlist-v<version>.json) into `folder`."""
    copied = []
    for path in sorted(cache_folder().glob("fontlist-v*.json")):
        try:
            shutil.copyfile(path, folder / path.name)
        except OSError:   # unreadable, or gone meanwhile: that sandbox scans the fonts itself
            continue
        copied.append(path.name)
    return copied
