"""A submitted notebook -> the code cells the grading run executes, in order (notebook_run.py runs them).

Only the notebook's code is taken from the submission. Each code cell is turned into plain Python
(magics and shell escapes become `pass`) and parsed here, so that a syntax error costs only its cell
and absurd sizes are refused before anything reaches the sandbox. The instructor's locked cells are
taken from the release, not from the submission (as nbgrader's autograde restores them). Of the
cells the assignment marks as not needed for grading (a model load, training, a figure), the run
keeps only what they define.
"""
from __future__ import annotations

import ast
import errno
import functools
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


class SubmissionError(Exception):
    """The file cannot be read as a notebook; the message is meant for the student."""


@dataclass
class Cell:
    number: int          # position among the notebook's code cells, from 1, as the student counts them
    source: str          # plain Python
    provided: bool = False   # the instructor's locked cell from the release, or its stand-in


@dataclass
class StudentCode:
    cells: list[Cell] = field(default_factory=list)
    skipped_cells: list[str] = field(default_factory=list)   # readable notes on cells we could not use

    def cells_defining(self, name: str) -> list[Cell]:
        """The student's cells that define `name` (def, class or assignment), at any depth: a definition
        inside `with` or `if` still counts. A textual guess, for messages and for recognising notebooks;
        what counts for grading is what the run defines."""
        pattern = re.compile(rf"\b(?:def|class)\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*=", re.MULTILINE)
        return [cell for cell in self.cells if not cell.provided and pattern.search(cell.source)]

    def defines(self, name: str) -> bool:
        return bool(self.cells_defining(name))


def read_notebook_bytes(path: Path) -> bytes:
    """The file's bytes, read as a regular file only (never through a link) and only up to the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        reason = "it is a symbolic link" if error.errno == errno.ELOOP else error.strerror
        raise SubmissionError(f"cannot read the submission: {reason}; submit the notebook file itself") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError("the submission is not a regular file: submit the notebook file itself")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise SubmissionError(f"the notebook is {info.st_size / 2**20:.0f} MB; clear large outputs and submit "
                                  f"again (limit {MAX_NOTEBOOK_BYTES // 2**20} MB)")
        data = stream.read(MAX_NOTEBOOK_BYTES + 1)
    if not data:
        raise SubmissionError("the submitted file is empty: submit the .ipynb notebook saved from Jupyter")
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(f"the notebook is over {MAX_NOTEBOOK_BYTES // 2**20} MB; clear large outputs")
    return data


def read_code_cells(path: Path) -> list[tuple[str | None, str]]:
    """(grade_id, source) of the code cells of a notebook file, in document order."""
    data = read_notebook_bytes(Path(path))
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):   # ValueError: bad JSON, or a 5000-digit number
        raise SubmissionError("the submitted file is not a Jupyter notebook (.ipynb JSON); "
                              "download it from Jupyter with File > Download") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise SubmissionError("the submitted file is JSON but not a Jupyter notebook (no list of cells)")
    sources = []
    for cell in document["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(part for part in source if isinstance(part, str))
        if isinstance(source, str):
            sources.append((_grade_id(cell), source))
    return sources


def _grade_id(cell: dict) -> str | None:
    metadata = cell.get("metadata")
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return grade_id if isinstance(grade_id, str) else None


@functools.cache
def locked_cells(release_notebook: Path) -> dict[str, str]:
    """grade_id -> source of the release's locked code cells (the instructor's, never the student's)."""
    document = json.loads(Path(release_notebook).read_text())
    found = {}
    for cell in document["cells"]:
        nbgrader = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and nbgrader.get("locked") and nbgrader.get("grade_id"):
            found[nbgrader["grade_id"]] = "".join(cell["source"])
    return found


def release_digest(locked: dict[str, str]) -> str:
    """Names the release whose locked cells a grading run used: every path must report the same one."""
    return hashlib.sha256(json.dumps(locked, sort_keys=True).encode()).hexdigest()[:16]


_MAGIC_LINE = re.compile(r"^(\s*)(?:[!%]|\?)")                    # !ls, %time f(), ?obj
_MAGIC_ASSIGNMENT = re.compile(r"^(\s*[\w.,\s]+?=\s*)[!%]")        # files = !ls
_HELP_LINE = re.compile(r"^(\s*)[\w.]+\?{1,2}\s*$")                # obj? obj??


def _to_python(cell_source: str) -> str:
    """IPython syntax -> plain Python, line by line: magics, shell escapes and help lines become `pass`
    (their results are never replayed), `%%writefile` writes its file, and any other cell magic makes
    the whole cell not Python. Linear in the
    cell's size, unlike IPython's own transformer (quadratic on thousands of `!` lines)."""
    stripped = cell_source.lstrip()
    if stripped.startswith("%%writefile"):   # a helper module written from the notebook, then imported
        header, _, body = stripped.partition("\n")
        words = header.split()[1:]
        if words and words[-1] != "-a":
            mode = "a" if "-a" in words[:-1] else "w"
            return f"with open({words[-1]!r}, {mode!r}) as _writefile:\n    _writefile.write({body!r})\n"
    if stripped.startswith("%%"):
        return ""
    try:   # plain Python stays as it is (a line like "%d items" may sit inside a string)
        ast.parse(cell_source)
        return cell_source
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    lines = []
    for line in cell_source.splitlines():
        assignment = _MAGIC_ASSIGNMENT.match(line)
        if assignment:
            line = assignment.group(1) + "None"
        elif match := _MAGIC_LINE.match(line) or _HELP_LINE.match(line):
            line = match.group(1) + "pass"
        lines.append(line)
    return "\n".join(lines) + "\n"


# A notebook of the exercises has a few hundred lines of code. Far more is no answer but a way to keep
# the grader busy (parsing runs in the trusted process): such cells are skipped, with a note.
MAX_CELL_CHARACTERS = 50_000
MAX_CODE_CHARACTERS = 300_000


def extract_student_code(path: Path, provided: dict[str, str] | None = None,
                         definitions_only: tuple[str, ...] = ()) -> StudentCode:
    """The cells to run. `provided`: the release's locked cells by grade_id, used in place of the
    submission's copies; `definitions_only`: grade_ids of cells (locked or the student's) reduced to
    what they define (see definitions_of)."""
    provided = provided or {}
    # A locked cell that lost its metadata (cells pasted into a fresh notebook) is still recognised by
    # its text, so that a heavy one is reduced all the same.
    by_source = {source.strip(): grade_id for grade_id, source in provided.items()}
    code = StudentCode()
    total = 0
    for number, (grade_id, cell_source) in enumerate(read_code_cells(path), start=1):
        if grade_id is None:
            grade_id = by_source.get(cell_source.strip())
        if grade_id in provided:
            source = provided[grade_id]
            code.cells.append(Cell(number, definitions_of(source) if grade_id in definitions_only else source,
                                   provided=True))
            continue
        total += len(cell_source)
        if len(cell_source) > MAX_CELL_CHARACTERS or total > MAX_CODE_CHARACTERS:
            code.skipped_cells.append(f"code cell {number} was ignored: it is longer than a notebook's code "
                                      f"may be ({len(cell_source)} characters; {MAX_CELL_CHARACTERS} per cell, "
                                      f"{MAX_CODE_CHARACTERS} in all)")
            continue
        python_source = _to_python(cell_source)
        try:
            ast.parse(python_source)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            line = getattr(error, "lineno", None)
            where = f" (line {line})" if line else ""
            code.skipped_cells.append(f"code cell {number} has a syntax error{where} and was ignored")
            continue
        if grade_id in definitions_only:
            python_source = definitions_of(python_source)
        code.cells.append(Cell(number, python_source))
    return code


_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def definitions_of(source: str) -> str:
    """What a cell defines without what it does: its imports, functions, classes and the assignments
    that call nothing (constants such as a prompt or a list of scales, which a later default argument
    may name). Loading a model, generating and drawing are left out. Kept statements stay on their
    own lines, so a traceback from a kept function points where the student wrote it."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    kept = [node for node in tree.body if isinstance(node, _DEFINITIONS)
            or (isinstance(node, (ast.Assign, ast.AnnAssign))
                and not any(isinstance(inner, ast.Call) for inner in ast.walk(node)))]
    if any(a.end_lineno >= b.lineno for a, b in zip(tree.body, tree.body[1:])):
        return "\n".join(ast.unparse(node) for node in kept) + "\n"   # `a = 1; load()`: lines are shared
    lines = source.splitlines()
    keep = [False] * len(lines)
    for node in kept:
        first = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
        keep[first - 1:node.end_lineno] = [True] * (node.end_lineno - first + 1)
    return "\n".join(line if wanted else "" for line, wanted in zip(lines, keep)) + "\n"
