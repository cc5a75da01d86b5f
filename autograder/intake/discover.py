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

import hashlib
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


MAX_DEPTH = 12          # folder levels searched below a given path: nbgrader's layout needs 3
MAX_ENTRIES = 20_000    # files and folders looked at below one given path


def _walk(root: Path, out_dir: Path | None) -> list[_Entry]:
    """Every file below `root`, breadth first and bounded: a submission's tree of any depth or size (a
    student can commit one) is searched to MAX_DEPTH levels and MAX_ENTRIES entries, never followed
    through links, and what was left out is reported as an entry of its own."""
    entries, queue, seen = [], [(root, 0)], 0
    while queue:
        here, depth = queue.pop(0)
        try:
            names = sorted(os.listdir(here))
        except OSError:
            entries.append(_Entry(here, "a folder that cannot be read"))
            continue
        for name in names:
            if name.startswith("."):
                continue
            seen += 1
            if seen > MAX_ENTRIES:
                entries.append(_Entry(here, f"a folder past the first {MAX_ENTRIES} files searched"))
                return entries
            path = here / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if not stat.S_ISDIR(mode):
                entries.append(_Entry(path, _kind(path, mode)))
            elif _is_output(path, out_dir):
                continue
            elif name.endswith(".ipynb"):   # a folder posing as a notebook
                entries.append(_Entry(path, "a folder"))
            elif depth + 1 >= MAX_DEPTH:
                entries.append(_Entry(path, f"a folder more than {MAX_DEPTH} levels deep"))
            else:
                queue.append((path, depth + 1))
    return entries


def _place(given: Path, entry: Path) -> tuple[str, str | None]:
    """(student, assignment folder or None) for a file found under `given` (or given itself).

    Who a file belongs to is decided by where `given` sits, never by folders a student made: given an
    assignment folder, its parent is the student; given a student's folder (one holding assignment
    folders), that is the student; given a class folder, the first level below it is the student,
    whatever lies deeper (a folder named after a classmate inside a repository is still its owner's)."""
    if entry == given:   # one notebook named on the command line
        folder = entry.parent.name if entry.parent.name in assignments.ASSIGNMENTS else None
        return (entry.parent.parent.name if folder else entry.stem), folder
    relative = entry.relative_to(given).parts
    if given.name in assignments.ASSIGNMENTS:
        return given.parent.name, given.name
    if len(relative) > 1 and relative[0] in assignments.ASSIGNMENTS:
        return given.name, relative[0]
    if len(relative) == 1:
        return entry.stem, None
    return relative[0], relative[1] if len(relative) > 2 and relative[1] in assignments.ASSIGNMENTS else None


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
        if not targets:
            raise DiscoveryError(
                f"cannot tell which assignment these submissions are for (notebooks are expected to be named "
                f"{' or '.join(a.notebook for a in assignments.ASSIGNMENTS.values())}): pass --assignment")
        for name in sorted(targets):
            chosen = _choose(student, assignments.get(name), entries)
            if len(targets) > 1 and not named:   # this student's files alone cannot say: it costs them, not the class
                chosen.notebook, chosen.problem = None, (
                    f"none of your files is named {chosen.assignment}'s notebook, so the grader cannot tell which "
                    f"assignment they are for: submit your notebook as {assignments.get(name).notebook}")
            submissions.append(chosen)
    return _unique_ids(submissions)


MAX_ID_BYTES = 200


def _kept_as_is(student: str) -> bool:
    """The platform's id is kept wherever it is a safe folder name of its own."""
    try:
        size = len(student.encode())
    except UnicodeEncodeError:   # bytes that are not UTF-8
        return False
    return (0 < size <= MAX_ID_BYTES and not student.startswith(".") and student not in RESERVED_IDS
            and not any(ord(c) < 32 or ord(c) == 127 for c in student))


def _unique_ids(submissions: list[Submission]) -> list[Submission]:
    """One id per student, one to one: the platform's own, or (for a name that cannot be a folder of ours)
    a readable one with a digest of the original, so two students can never share a report or a row."""
    owner: dict[tuple[str, str], str] = {}
    for submission in submissions:
        original = submission.student
        if not _kept_as_is(original):
            readable = re.sub(r"[^A-Za-z0-9._@+-]", "_", original.encode(errors="surrogateescape").decode(
                errors="replace"))[:60].lstrip(".") or "student"
            digest = hashlib.sha256(original.encode(errors="surrogateescape")).hexdigest()[:8]
            submission.student = f"{readable}-{digest}"
            submission.notes.append(f"graded as {submission.student!r}: the submitted name cannot be used as it is")
        key = (submission.assignment, submission.student)
        if owner.setdefault(key, original) != original:
            raise DiscoveryError(f"two submissions would share the id {submission.student!r} "
                                 f"({owner[key]!r} and {original!r}): rename one and grade again")
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
