"""Paths on the command line -> one submission per (student, assignment), each with its notebook.

nbgrader's layout is the model: submitted/<student>/<assignment>/<notebook>.ipynb, so wherever a
folder named after an assignment appears, the folder above it is the student. This holds whether
the grader is pointed at submitted/, at one student's folder, at one assignment's folders of every
student (submitted/*/<assignment>) or at one notebook. Outside that layout, the first folder level
under a given folder is the student and the notebook's file name tells the assignment.

Only regular files are read: links, folders named *.ipynb, fifos and the like are reported, never
followed. A folder holding our own output is never taken for a submission.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from autograder import assignments

OUTPUT_MARKER = ".autograder-output"   # written into every --out folder
RESERVED_IDS = {"grades.csv"}


class DiscoveryError(SystemExit):
    """The command line itself cannot be graded (a missing path, a file that is not a notebook)."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


@dataclass
class Submission:
    student: str
    assignment: str
    notebook: Path | None = None        # what is graded; None when nothing can be
    problem: str | None = None          # why nothing is graded, for the student
    notes: list[str] = field(default_factory=list)   # other files found and not graded

    @property
    def key(self) -> tuple[str, str]:
        return self.assignment, self.student

    def report_dir(self, out_dir: Path) -> Path:
        return out_dir / self.assignment / self.student


@dataclass
class _Entry:
    path: Path
    kind: str                      # "notebook", "file", or what is wrong with it ("a symbolic link", ...)


def _kind(path: Path, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return "notebook" if path.suffix == ".ipynb" else "file"


def _is_output(folder: Path, out_dir: Path | None) -> bool:
    return (out_dir is not None and folder == out_dir) or (folder / OUTPUT_MARKER).exists()


def _walk(root: Path, out_dir: Path | None) -> list[_Entry]:
    entries = []
    for folder, subfolders, files in os.walk(root, followlinks=False):
        here = Path(folder)
        kept = []
        for name in sorted(subfolders):
            child = here / name
            if name.startswith(".") or _is_output(child, out_dir):
                continue
            if name.endswith(".ipynb"):   # a folder posing as a notebook
                entries.append(_Entry(child, "a folder"))
                continue
            kept.append(name)
        subfolders[:] = kept                      # os.walk never enters links to folders
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            entries.append(_Entry(path, _kind(path, os.lstat(path).st_mode)))
    return entries


def _place(given: Path, entry: Path) -> tuple[str, str | None]:
    """(student, assignment folder or None) for a file found under `given` (or given itself)."""
    if entry == given:   # one notebook named on the command line
        folders, fallback = [entry.parent.parent.name, entry.parent.name], entry.stem
    else:
        relative = entry.relative_to(given).parts
        folders = [given.parent.name, given.name, *relative[:-1]]
        fallback = relative[0] if len(relative) > 1 else entry.stem
    for index in range(1, len(folders)):
        if folders[index] in assignments.ASSIGNMENTS:
            return folders[index - 1], folders[index]
    return fallback, None


def _named(entries: list[_Entry]) -> set[str]:
    """The assignments whose notebook names appear among these files."""
    return {a.name for e in entries if e.kind == "notebook" and (a := assignments.by_notebook_name(e.path.name))}


def _choose(student: str, assignment: assignments.Assignment, entries: list[_Entry]) -> Submission:
    """The notebook to grade among the files a student left for one assignment."""
    submission = Submission(student, assignment.name)
    notebooks = [e.path for e in entries if e.kind == "notebook"]
    expected = sorted((p for p in notebooks if p.name == assignment.notebook), key=lambda p: (len(p.parts), p))
    others = [p for p in notebooks if p not in expected[:1]]
    odd = [e for e in entries if e.kind not in ("notebook", "file")]
    if expected:
        submission.notebook = expected[0]
    elif len(others) == 1 and assignments.by_notebook_name(others[0].name) is None:
        submission.notebook = others[0]
        submission.notes.append(f"expected {assignment.notebook}, found {others[0].name}: graded that one")
        others = []
    elif others:
        belongs = [f"{p.name} ({a.title})" for p in others if (a := assignments.by_notebook_name(p.name))]
        submission.problem = (f"no {assignment.notebook} was submitted for {assignment.title}; found "
                              f"{', '.join(p.name for p in others)}"
                              + (f". {', '.join(belongs)} belongs to another assignment" if belongs else "")
                              + f": submit your notebook as {assignment.notebook}")
        others = []
    elif odd:
        submission.problem = "; ".join(f"{e.path.name} is {e.kind}, not a notebook" for e in odd[:5]) + \
            f": submit {assignment.notebook} as a plain file"
    else:
        names = ", ".join(e.path.name for e in entries[:5])
        submission.problem = f"no notebook was submitted ({assignment.notebook} expected; found {names or 'nothing'})"
    submission.notes += [f"also found {p.name}: not graded (only {assignment.notebook} is)" for p in others]
    submission.notes += [f"{e.path.name} is {e.kind}: not read" for e in odd if submission.notebook][:5]
    return submission


def discover(paths: list[str], assignment: str | None = None, out_dir: Path | None = None) -> list[Submission]:
    """Every submission under `paths`, in student order, with unique student ids."""
    only = assignments.get(assignment) if assignment else None
    out_dir = out_dir.resolve() if out_dir else None
    groups: dict[tuple[str, str | None], list[_Entry]] = {}
    for given_text in paths:
        given = Path(given_text).absolute()
        try:
            mode = os.lstat(given).st_mode
        except OSError:
            raise DiscoveryError(f"no such file or folder: {given_text}") from None
        if stat.S_ISDIR(mode):
            if _is_output(given, out_dir):
                raise DiscoveryError(f"{given_text} is an output folder of the grader, not submissions")
            found = _walk(given, out_dir)
        elif stat.S_ISREG(mode) and given.suffix == ".ipynb":
            found = [_Entry(given, "notebook")]
        else:
            kind = _kind(given, mode)
            raise DiscoveryError(f"{given_text} is {'not a notebook' if kind == 'file' else kind}: "
                                 "give a .ipynb file or a folder of submissions")
        for entry in found:
            student, folder = _place(given, entry.path)
            if entry.path.parent == given and entry.kind != "notebook" and folder is None:
                continue   # loose non-notebook files in a class folder (a README) belong to no one
            groups.setdefault((student, folder), []).append(entry)

    by_name = _named([e for (_, folder), entries in groups.items() if folder is None for e in entries])
    submissions: list[Submission] = []
    for (student, folder), entries in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        if folder is not None:
            if only is not None and folder != only.name:
                continue
            submissions.append(_choose(student, assignments.get(folder), entries))
            continue
        if only is not None:
            submissions.append(_choose(student, only, entries))
            continue
        named = _named(entries)
        targets = named or by_name
        if len(targets) != 1 and not named:
            raise DiscoveryError(
                f"cannot tell which assignment {student}'s files belong to (notebooks are expected to be named "
                f"{' or '.join(a.notebook for a in assignments.ASSIGNMENTS.values())}): pass --assignment")
        for name in sorted(targets):
            submissions.append(_choose(student, assignments.get(name), entries))
    return _unique_ids(submissions)


def _unique_ids(submissions: list[Submission]) -> list[Submission]:
    taken: set[tuple[str, str]] = set()
    for submission in submissions:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", submission.student)
        base = ("_" + base[1:] if base.startswith(".") else base) or "submission"
        key = base + "_" if base in RESERVED_IDS else base
        number = 2
        while (submission.assignment, key) in taken:
            key, number = f"{base}-{number}", number + 1
        taken.add((submission.assignment, key))
        submission.student = key
    return submissions


def discover_upload(folder: Path, assignment: str | None = None) -> Submission:
    """One student's upload (Gradescope's /autograder/submission): every file below it, however nested."""
    entries = _walk(Path(folder).absolute(), None)
    if assignment:
        chosen = assignments.get(assignment)
    else:
        named = _named(entries)
        if len(named) != 1:
            raise DiscoveryError("cannot tell which assignment this upload is for: pass --assignment")
        chosen = assignments.get(named.pop())
    return _choose("submission", chosen, entries)
