"""The documentation cannot rot: docs/ builds strictly with mkdocs, and every file path and
`python -m autograder` command that docs/*.md and README.md mention exists in this checkout.

Each test was seen to fail once by hand before it was kept:
- a link to `missing.md` (and one to `sandbox.md#no-such-heading`) in docs/index.md made
  `mkdocs build --strict` exit 1 ("Aborted with 1 warnings in strict mode");
- `autograder/sandbox.py` (the old flat module) in backticks in docs/sandbox.md was reported missing;
- `python -m autograder grading` in docs/instructors.md was reported as no such command, and
  `python -m autograder bundle moodle` as no such bundle;
- a README link to `docs/nothing.md` was reported missing.
"""
from __future__ import annotations

import re

import pytest
import subprocess
import sys
from pathlib import Path

pytestmark = pytest.mark.quick   # in the inner-loop subset: -m quick

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# Top-level folders of this repository: a code reference starting with one of them must exist.
REPO_FOLDERS = ("autograder", "tests", "benchmarks", "scripts", "text_to_image", "exercises", "release",
                "solutions", "samples", "classroom", "docs", ".github", "examples")
# A path inside code (inline `...` or a fenced block): one of the folders at a word start (not after `/`,
# so /autograder/source on Gradescope is not one), then path characters.
REPO_PATH = re.compile(r"(?<![\w./~-])((?:%s)/[\w./<>*-]*)" % "|".join(re.escape(f) for f in REPO_FOLDERS))
FENCED = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")   # a span may wrap onto the next line
# The word after `python -m autograder` (an option such as --help, or COMMAND in capitals, is no command),
# and the word after that (what `bundle` packages for).
COMMAND = re.compile(r"python -m autograder (?!-)([\w-]+)(?: ([a-z][\w-]*))?")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def code_of(text: str) -> list[str]:
    """The code in a Markdown page: fenced blocks whole, and the inline spans of the prose around them."""
    fenced = FENCED.findall(text)
    return fenced + [" ".join(span.split()) for span in INLINE.findall(FENCED.sub("", text))]


def mentions(pattern: re.Pattern) -> list[tuple[str, str]]:
    """(page, match) for every match of `pattern` in the code of every page."""
    return [(page.relative_to(ROOT).as_posix(), found)
            for page in PAGES for code in code_of(page.read_text()) for found in pattern.findall(code)]


def test_the_pages_build_strictly(tmp_path):
    # strict: any warning fails the build, and mkdocs.yml makes a missing page, a missing anchor or a
    # page left out of nav a warning.
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "index.html").exists()


def test_every_repository_path_the_pages_mention_exists():
    paths = mentions(REPO_PATH)
    assert len(paths) > 50   # the pattern still finds them
    # <name> and * are placeholders; my_lesson is the guide's example lesson (tests/test_new_assignment.py builds it)
    missing = [(page, path) for page, path in paths if "<" not in path and "*" not in path
               and "my_lesson" not in path and not (ROOT / path.rstrip(".")).exists()]
    assert missing == [], "these paths do not exist in the checkout (moved? renamed?)"


def test_the_readme_links_to_pages_that_exist():
    links = [link for link in LINK.findall((ROOT / "README.md").read_text()) if "://" not in link]
    assert len(links) >= 8
    assert [link for link in links if not (ROOT / link.split("#")[0]).exists()] == []


def test_every_autograder_command_the_pages_mention_is_real():
    usage = subprocess.run([sys.executable, "-m", "autograder", "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert usage.returncode == 0, usage.stderr
    commands = set(re.search(r"\{([\w,-]+)\}", usage.stdout).group(1).split(","))
    assert {"grade", "release"} <= commands
    bundle = subprocess.run([sys.executable, "-m", "autograder", "bundle", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert bundle.returncode == 0, bundle.stderr
    targets = set(re.search(r"positional arguments:\s+\{([\w,-]+)\}", bundle.stdout).group(1).split(","))

    used = mentions(COMMAND)
    assert len(used) >= 10
    unknown = [(page, command) for page, (command, _) in used if command not in commands and not command.isupper()]
    assert unknown == [], f"`python -m autograder --help` lists only {sorted(commands)}"
    wrong_bundle = [(page, target) for page, (command, target) in used if command == "bundle" and target not in targets]
    assert wrong_bundle == [], f"`bundle` packages only for {sorted(targets)}"


def test_the_documented_exit_statuses_are_the_ones_grade_returns(tmp_path):
    text = (ROOT / "docs" / "instructors.md").read_text()
    section = text.split("### Exit status", 1)[1].split("###", 1)[0]
    documented = {int(code): words for code, words in re.findall(r"^- (\d+) when (.+?)(?=^- |\Z)", section, re.M | re.S)}
    (tmp_path / "empty").mkdir()
    cases = {"a missing path": [str(tmp_path / "nothing-here")], "--workers 0": [str(tmp_path / "empty"), "--workers", "0"],
             "--shard 4/4": [str(tmp_path / "empty"), "--shard", "4/4"], "no submissions were found": [str(tmp_path / "empty")]}
    for words, arguments in cases.items():
        run = subprocess.run([sys.executable, "-m", "autograder", "grade", *arguments, "--out", str(tmp_path / "out")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        code = next(code for code, said in documented.items() if words in " ".join(said.split()))
        assert run.returncode == code, (words, run.returncode, run.stderr[-500:])
        assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
