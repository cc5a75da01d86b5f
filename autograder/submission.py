"""A submitted notebook -> the source of one graded function and everything it needs.

Only the notebook's code is read, never its nbgrader metadata (a student can edit that). Each code
cell is turned into plain Python (magics and shell escapes are dropped), parsed on its own so that
a syntax error costs only its cell, and the top-level imports, functions, classes and simple
assignments are kept. For a graded function we emit just the definitions it reaches, in notebook
order, so the last definition of a name wins as it would in Jupyter and unrelated top-level code
(plots, prints, monkeypatching statements) never runs.
"""
from __future__ import annotations

import ast
import errno
import json
import os
import re
import stat
import symtable
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


class SubmissionError(Exception):
    """The file cannot be read as a notebook; the message is meant for the student."""


@dataclass
class Definition:
    names: tuple[str, ...]          # names this statement binds at module level
    source: str                     # the statement's code
    uses: frozenset[str]            # names it reads (bodies, defaults, decorators, bases)
    order: int                      # position in the notebook
    is_import: bool = False


@dataclass
class StudentCode:
    definitions: list[Definition] = field(default_factory=list)
    skipped_cells: list[str] = field(default_factory=list)   # readable notes on cells we could not parse

    def defines(self, name: str) -> bool:
        return any(name in d.names for d in self.definitions)

    def program_for(self, function_name: str) -> str:
        """The module source defining `function_name` and, transitively, what it uses."""
        last_binding: dict[str, Definition] = {}
        for definition in self.definitions:
            for name in definition.names:
                last_binding[name] = definition
        needed: set[int] = set()
        pending = [function_name]
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen or name not in last_binding:
                continue
            seen.add(name)
            definition = last_binding[name]
            needed.add(definition.order)
            pending.extend(definition.uses)
        chosen = [d for d in self.definitions if d.order in needed or "*" in d.names]
        # Imports first: cells may be in any order, and a constant may need a module imported later.
        chosen.sort(key=lambda d: (not d.is_import, d.order))
        return "\n\n".join(d.source for d in chosen) + "\n"


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


def read_code_cells(path: Path) -> list[str]:
    """Sources of the code cells of a notebook file, in document order."""
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
            sources.append(source)
    return sources


def _segments(source: str, statements: list) -> list[str]:
    """Each statement's source text, in one pass (ast.get_source_segment re-splits the whole cell per call)."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    encoded = [line.encode("utf-8") for line in lines]

    def offset(lineno, col):   # ast columns are byte offsets into the line's UTF-8
        return starts[lineno - 1] + len(encoded[lineno - 1][:col].decode("utf-8", "replace"))
    return [source[offset(node.lineno, node.col_offset):offset(node.end_lineno, node.end_col_offset)]
            for node in statements]


_MAGIC_LINE = re.compile(r"^(\s*)(?:[!%]|\?)")                    # !ls, %time f(), ?obj
_MAGIC_ASSIGNMENT = re.compile(r"^(\s*[\w.,\s]+?=\s*)[!%]")        # files = !ls
_HELP_LINE = re.compile(r"^(\s*)[\w.]+\?{1,2}\s*$")                # obj? obj??


def _to_python(cell_source: str) -> str:
    """IPython syntax -> plain Python, line by line: magics, shell escapes and help lines become `pass`
    (their results are never replayed), and a cell magic makes the whole cell not Python. Linear in the
    cell's size, unlike IPython's own transformer (quadratic on thousands of `!` lines)."""
    if cell_source.lstrip().startswith("%%"):
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


def _module_names_used(source: str) -> frozenset[str]:
    """Module-level names a statement reads: at top level, and as globals inside its functions and
    classes (parameters and local variables are not dependencies)."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    names: set[str] = set()
    pending = [table]
    while pending:
        scope = pending.pop()
        for symbol in scope.get_symbols():
            at_top = scope.get_type() == "module"
            if symbol.is_referenced() and (at_top or symbol.is_global()):
                names.add(symbol.get_name())
        pending.extend(scope.get_children())
    return frozenset(names)


def _bound_names(statement: ast.stmt) -> tuple[str, ...]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (statement.name,)
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return tuple("*" if alias.name == "*" else (alias.asname or alias.name).split(".")[0]
                     for alias in statement.names)
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets = [statement.target]
    else:
        return ()
    names = []
    for target in targets:
        elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        if not all(isinstance(e, ast.Name) for e in elements):
            return ()  # attribute or subscript targets mutate other objects: never replay them
        names.extend(e.id for e in elements)
    return tuple(names)


# A notebook of the exercises has a few hundred lines of code. Far more is no answer but a way to keep
# the grader busy (parsing runs in the trusted process): such cells are skipped, with a note.
MAX_CELL_CHARACTERS = 50_000
MAX_CODE_CHARACTERS = 300_000


def extract_student_code(path: Path) -> StudentCode:
    code = StudentCode()
    order = 0
    total = 0
    for index, cell_source in enumerate(read_code_cells(path)):
        total += len(cell_source)
        if len(cell_source) > MAX_CELL_CHARACTERS or total > MAX_CODE_CHARACTERS:
            code.skipped_cells.append(f"code cell {index + 1} was ignored: it is longer than a notebook's code "
                                      f"may be ({len(cell_source)} characters; {MAX_CELL_CHARACTERS} per cell, "
                                      f"{MAX_CODE_CHARACTERS} in all)")
            continue
        python_source = _to_python(cell_source)
        try:
            module = ast.parse(python_source)
            statements = [s for s in module.body if _bound_names(s)]
            sources = _segments(python_source, statements)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
            line = getattr(error, "lineno", None)
            where = f" (line {line})" if line else ""
            code.skipped_cells.append(f"code cell {index + 1} has a syntax error{where} and was ignored")
            continue
        for statement, source in zip(statements, sources):
            names = _bound_names(statement)
            # Decorators are part of the definition but not of its source segment.
            decorators = getattr(statement, "decorator_list", [])
            if decorators:
                source = "\n".join("@" + ast.unparse(d) for d in decorators) + "\n" + source
            code.definitions.append(Definition(names, source, _module_names_used(source), order,
                                               isinstance(statement, (ast.Import, ast.ImportFrom))))
            order += 1
    return code
