"""Mutants of a graded function's correct source: each one small AST edit, as mutmut or cosmic-ray make them.

Operators: arithmetic and comparison swaps, swapped operands, an operation or call replaced by one of
its operands, constants changed, unary operators and attributes (.T) dropped, keyword arguments dropped,
the first two arguments of a call swapped, one statement deleted, a returned pair swapped, and a name
replaced by another parameter of the function. Mutants identical to the original or to each other, and
those that do not compile, are left out. A mutant's id is a digest of its source, so it stays the same
for as long as the original does (equivalents are marked by that id).
"""
from __future__ import annotations

import ast
import copy
import hashlib
from dataclasses import dataclass

ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult,
              ast.MatMult: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.Mult}
COMPARISON = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
              ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
ORDERED = (ast.Sub, ast.Div, ast.MatMult, ast.Pow, ast.FloorDiv, ast.Mod)


@dataclass(frozen=True)
class Mutant:
    function: str
    operator: str
    line: int
    source: str

    @property
    def id(self) -> str:
        return f"{self.function}-{hashlib.sha1(self.source.encode()).hexdigest()[:8]}"


def _places(tree):
    """(node, parent, field, index in a list field or None) for every node below the function's def."""
    found = []
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, ast.AST):
                found.append((value, parent, field, None))
            elif isinstance(value, list):
                found += [(item, parent, field, i) for i, item in enumerate(value) if isinstance(item, ast.AST)]
    return found


def _replace(parent, field, index, new):
    if index is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[index] = new


def _swap(node, first, second):
    a, b = getattr(node, first), getattr(node, second)
    setattr(node, first, b)
    setattr(node, second, a)


def _reverse(compare):
    left, right = compare.left, compare.comparators[0]
    compare.left, compare.comparators = right, [left]


def _edits(node, parent, field, index, parameters):
    """(operator name, a function that applies the edit) for every mutation of `node`."""
    if isinstance(node, ast.BinOp):
        if type(node.op) in ARITHMETIC:
            yield "arithmetic swap", lambda: setattr(node, "op", ARITHMETIC[type(node.op)]())
        if isinstance(node.op, ORDERED):
            yield "operands swapped", lambda: _swap(node, "left", "right")
        yield "operation -> left operand", lambda: _replace(parent, field, index, node.left)
        yield "operation -> right operand", lambda: _replace(parent, field, index, node.right)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARISON:
        yield "comparison swap", lambda: setattr(node, "ops", [COMPARISON[type(node.ops[0])]()])
        yield "comparison reversed", lambda: _reverse(node)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = node.value
        for name, new in (("constant + 1", value + 1), ("constant negated", -value), ("constant -> 0", 0 * value),
                          ("constant doubled", value * 2)):
            if new != value:
                yield name, lambda new=new: setattr(node, "value", new)
    elif isinstance(node, ast.UnaryOp):
        yield "unary operator dropped", lambda: _replace(parent, field, index, node.operand)
    elif isinstance(node, ast.Attribute) and node.attr == "T":
        yield "transpose dropped", lambda: _replace(parent, field, index, node.value)
    elif isinstance(node, ast.Call):
        if node.args:
            yield "call -> its first argument", lambda: _replace(parent, field, index, node.args[0])
        if isinstance(node.func, ast.Attribute):
            yield "method call -> its object", lambda: _replace(parent, field, index, node.func.value)
        for k, keyword in enumerate(node.keywords):
            yield f"keyword {keyword.arg}= dropped", lambda k=k: node.keywords.pop(k)
        if len(node.args) >= 2:
            yield "first two arguments swapped", lambda: node.args.__setitem__(slice(0, 2), [node.args[1], node.args[0]])
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2:
        yield "returned pair swapped", lambda: node.value.elts.reverse()
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in parameters:
        for other in parameters:
            if other != node.id:
                yield f"{node.id} -> {other}", lambda other=other: setattr(node, "id", other)
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr)) and index is not None \
            and len(getattr(parent, field)) > 1 and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
        yield "statement deleted", lambda: getattr(parent, field).pop(index)


def mutants(function: str, source: str) -> list[Mutant]:
    tree = ast.parse(source)
    original = ast.unparse(tree)
    definition = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    parameters = [a.arg for a in definition.args.args]
    seen, made = {original}, []
    count = len(_places(definition))
    for position in range(count):
        node, *_ = _places(definition)[position]
        for operator, _ in list(_edits(node, *_places(definition)[position][1:], parameters)):
            copy_tree = copy.deepcopy(tree)
            copy_def = next(n for n in copy_tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
            target, parent, field, index = _places(copy_def)[position]
            edit = dict(_edits(target, parent, field, index, parameters)).get(operator)
            if edit is None:
                continue
            edit()
            try:
                mutated = ast.unparse(ast.fix_missing_locations(copy_tree))
                compile(mutated, "<mutant>", "exec")
            except (SyntaxError, ValueError, TypeError, AttributeError, RecursionError):
                continue
            if mutated in seen:
                continue
            seen.add(mutated)
            made.append(Mutant(function, operator, getattr(node, "lineno", 0), mutated + "\n"))
    return made
