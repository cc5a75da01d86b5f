"""The grader's matplotlib font list, handed to each sandbox with the files it runs.

A sandbox's zygote imports matplotlib with an empty cache (its home is a fresh scratch folder), and
matplotlib then scans the machine's fonts again: 0.1-0.3 s of CPU in every sandbox's start. The list the
grader's own matplotlib made is handed over with only the fonts every sandbox sees where the grader does
(under /usr and the Python installation): matplotlib scans again, in each process, when a listed font is
missing, and the rest (a user's ~/.fonts) would show student code the grader's folders.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SEEN_INSIDE = tuple(sorted({"/usr/", *(os.path.join(prefix, "") for prefix in (sys.prefix, sys.base_prefix))}))


def cache_folder() -> Path:
    """Where matplotlib keeps this machine's cache on Linux (matplotlib.get_cachedir's rules, without
    importing matplotlib into the grading process)."""
    configured = os.environ.get("MPLCONFIGDIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib"


def seen_inside(name: str) -> bool:
    """matplotlib lists its own fonts relative to its data folder, the others by their absolute path."""
    return not os.path.isabs(name) or name.startswith(SEEN_INSIDE)


def copy_into(folder: Path) -> None:
    """Writes the font lists found there (one per matplotlib version: fontlist-v<version>.json) into `folder`,
    each less the fonts a sandbox does not see."""
    for path in sorted(cache_folder().glob("fontlist-v*.json")):
        try:
            fonts = json.loads(path.read_text())
            for kind in ("ttflist", "afmlist"):
                fonts[kind] = [font for font in fonts[kind] if seen_inside(str(font["fname"]))]
            (folder / path.name).write_text(json.dumps(fonts))
        except (OSError, ValueError, KeyError, TypeError):   # unreadable or not matplotlib's: the sandbox scans
            continue
