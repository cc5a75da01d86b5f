"""A notebook -> the code of one graded function as the grading run defines it: the function and its helpers.

Built on extract_student_code (the cells the grading run executes, locked cells from the release): of the
student's own cells, the last top-level definition of the function wins (as when the notebook runs top to
bottom), then every top-level function, class or constant it names, and what those name in turn. The
result is re-printed from the syntax tree (comments and layout gone) with the helpers in the order the
function first reaches them, not the order they were written in. Nothing is run.
"""
from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

from autograder import assignments
from autograder.intake.submission import StudentCode, SubmissionError, extract_student_code, locked_cells

_DEFINES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def _names_defined(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)]


def _without_docstring(node: ast.stmt) -> ast.stmt:
    body = getattr(node, "body", None)
    if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and len(body) > 1
            and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        node.body = body[1:]
    return node


_BLOCKS = (ast.If, ast.With, ast.Try)   # a definition inside one of these at the top still runs (and is graded)


def _top_level(body: list[ast.stmt]):
    for node in body:
        if isinstance(node, _BLOCKS):
            for inner in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", []),
                          *(handler.body for handler in getattr(node, "handlers", []))):
                yield from _top_level(inner)
        else:
            yield node


def definitions(sources: list[str]) -> dict[str, ast.stmt]:
    """Top-level name -> the statement that defines it last, over cells in order."""
    found: dict[str, ast.stmt] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in _top_level(tree.body):
            if isinstance(node, _DEFINES):
                for name in _names_defined(node):
                    found[name] = node
    return found


def function_with_helpers(found: dict[str, ast.stmt], function: str, others: frozenset[str] = frozenset()) -> str:
    """`function`'s definition, then the definitions it reaches, breadth first, not through `others` (graded
    functions of their own); "" when it is not defined."""
    if function not in found:
        return ""
    order, queue, seen = [], deque([found[function]]), set()
    while queue:   # linear in the definitions reached: a notebook may hold tens of thousands of them
        node = queue.popleft()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        named = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
        queue += [found[name] for name in dict.fromkeys(named) if name in found and name not in others]
    try:
        return "\n\n".join(ast.unparse(_without_docstring(node)) for node in order) + "\n"
    except (ValueError, RecursionError):
        return ""


def graded_code(notebook: Path, assignment: assignments.Assignment, functions=None,
                students_cells_only: bool = True) -> dict[str, str]:
    """Graded function -> its code and helpers in `notebook` ("" for a function it does not define, or for all
    of them when the notebook cannot be read)."""
    try:
        code = extract_student_code(Path(notebook), locked_cells(assignment.release_notebook),
                                    assignment.definitions_only)
    except SubmissionError:
        return dict.fromkeys(functions or assignment.functions, "")
    return graded_code_of(code, assignment, functions, students_cells_only)


def graded_code_of(code: StudentCode, assignment: assignments.Assignment, functions=None,
                   students_cells_only: bool = True) -> dict[str, str]:
    """graded_code of a notebook's code extracted already (the grading worker's, as it grades it)."""
    found = definitions([cell.source for cell in code.cells if not (students_cells_only and cell.provided)])
    graded = frozenset(assignment.functions)
    return {function: function_with_helpers(found, function, graded - {function})
            for function in functions or assignment.functions}


def stub_and_solution(assignment: assignments.Assignment) -> dict[str, str]:
    """Graded function -> the released stub's and the instructor's solution's code, one after the other: what
    every submission may share with every other without copying."""
    solution = assignments.COURSE_ROOT / "solutions" / assignment.name / assignment.notebook
    parts = [graded_code(assignment.release_notebook, assignment)]
    if solution.is_file():
        parts.append(graded_code(solution, assignment))
    return {function: "\n".join(part[function] for part in parts) for function in assignment.functions}
