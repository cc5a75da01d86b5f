"""A Lesson 1 class for the similarity pass: independently written correct solutions in different styles, and
planted copies of some of them disguised as a copier would (names changed, helpers moved, comments and
layout changed).

The styles are the correct variants of tests/submissions.py (CORRECT and PARITY: each passes the hidden
checks), one style per graded function, plus a few more written here. An independent student takes one
style per function; no two independent students share more than MAX_SHARED functions' styles.
"""
from __future__ import annotations

import ast
import builtins
import itertools
import random
from dataclasses import dataclass, field
from pathlib import Path

from tests.submissions import ASSIGNMENT, CORRECT, PARITY, Variant, build, variant_with

FUNCTIONS = ("cross_attention", "apply_cfg", "guidance_norms", "generate_guidance_sweep")
MAX_SHARED = 2

MORE_STYLES = {
    "guidance_norms": ['''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    norms = []
    for scale in guidance_scales:
        guided = apply_cfg(noise_uncond, noise_cond, scale)
        norms.append(torch.linalg.vector_norm(guided).item())
    return norms
''', '''
def guidance_norms(noise_uncond, noise_cond, guidance_scales):
    direction = noise_cond - noise_uncond
    return [float(torch.sqrt(((noise_uncond + float(w) * direction) ** 2).sum())) for w in guidance_scales]
'''],
    "generate_guidance_sweep": ['''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    def one(scale):
        g = torch.Generator("cpu")
        g.manual_seed(seed)
        out = pipe(prompt=prompt, num_inference_steps=num_inference_steps, guidance_scale=scale, generator=g)
        return out.images[0]
    return [one(s) for s in guidance_scales]
''', '''
def generate_guidance_sweep(pipe, prompt, guidance_scales, seed=42, num_inference_steps=30):
    pictures = []
    index = 0
    while index < len(guidance_scales):
        rng = torch.Generator(device="cpu").manual_seed(int(seed))
        output = pipe(prompt, generator=rng, guidance_scale=float(guidance_scales[index]),
                      num_inference_steps=num_inference_steps)
        pictures.append(output.images[0])
        index += 1
    return pictures
'''],
    "apply_cfg": ['''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    direction = noise_cond - noise_uncond
    guided = noise_uncond.clone()
    guided += guidance_scale * direction
    return guided
'''],
}


@dataclass
class Piece:
    """One graded function written one way: its cell, and the cells of helpers it needs."""
    source: str
    before: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def styles() -> dict[str, list[Piece]]:
    """Graded function -> the distinct correct ways of writing it found in the corpora."""
    default = variant_with()
    found: dict[str, list[Piece]] = {f: [Piece(getattr(default, f))] for f in FUNCTIONS}
    for variant in [*CORRECT.values(), *PARITY.values()]:
        changed = [f for f in FUNCTIONS if getattr(variant, f) != getattr(default, f)]
        if len(changed) != 1 or variant.strip_metadata or variant.reverse_cells:
            continue
        function = changed[0]
        piece = Piece(getattr(variant, function), [c for cells in variant.before.values() for c in cells],
                      list(variant.extra_cells))
        if all(piece.source != known.source for known in found[function]):
            found[function].append(piece)
    for function, sources in MORE_STYLES.items():
        found[function] += [Piece(source) for source in sources]
    return found


def variant_of(pieces: dict[str, Piece]) -> Variant:
    before = {f: p.before for f, p in pieces.items() if p.before}
    extra = [cell for p in pieces.values() for cell in p.extra]
    return variant_with(**{f: p.source for f, p in pieces.items()}, before=before, extra_cells=extra)


def independent_students(count: int, seed: int = 0) -> list[dict[str, Piece]]:
    """`count` students, each a combination of styles sharing at most MAX_SHARED functions with any other."""
    found = styles()
    combinations = list(itertools.product(*(range(len(found[f])) for f in FUNCTIONS)))
    random.Random(seed).shuffle(combinations)
    chosen: list[tuple] = []
    for combination in combinations:
        if all(sum(a == b for a, b in zip(combination, other)) <= MAX_SHARED for other in chosen):
            chosen.append(combination)
        if len(chosen) == count:
            break
    return [{f: found[f][i] for f, i in zip(FUNCTIONS, combination)} for combination in chosen]


class _Renamer(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def visit_Name(self, node):
        node.id = self.mapping.get(node.id, node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.mapping.get(node.arg, node.arg)
        return node

    def visit_FunctionDef(self, node):
        node.name = self.mapping.get(node.name, node.name)
        self.generic_visit(node)
        return node


def _renamable(trees: list[ast.Module]) -> set[str]:
    """Names a copier can change without changing what the code does or its graded signature."""
    kept = set(FUNCTIONS) | set(dir(builtins))
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                kept |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
            elif isinstance(node, ast.FunctionDef):
                (kept if node.name in FUNCTIONS else names).update(a.arg for a in node.args.args)
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names - kept


def _relaid(source: str, note: str) -> str:
    """Two-space indentation, a comment over every definition, blank lines doubled."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip(" ")
        indent = "  " * ((len(line) - len(stripped)) // 4)
        if stripped.startswith(("def ", "class ")):
            lines.append(f"{indent}# {note}")
        lines.append(indent + stripped)
        if not stripped:
            lines.append("")
    return "\n".join(lines) + "\n"


def disguised(pieces: dict[str, Piece], seed: int) -> Variant:
    """A copy of a student's work: every renamable name changed, helpers moved after what uses them and in the
    opposite order, comments and layout changed. Cells that are not Python (a %%writefile) are moved only."""
    pieces = {f: Piece(p.source, list(p.before), list(p.extra)) for f, p in pieces.items()}
    cells = [c for p in pieces.values() for c in (p.source, *p.before, *p.extra)]
    trees = {}
    for cell in cells:
        try:
            trees[cell] = ast.parse(cell)
        except SyntaxError:
            pass
    rng = random.Random(seed)
    mapping = {name: f"{rng.choice(['my', 'the', 'tmp', 'val'])}_{name.lower()}_{index}"
               for index, name in enumerate(sorted(_renamable(list(trees.values()))))}
    notes = ["my own work", "TODO: tidy up", "computes the thing", "see lecture notes"]

    def rewrite(cell: str) -> str:
        if cell not in trees:
            return cell
        return _relaid(ast.unparse(_Renamer(mapping).visit(ast.parse(cell))), rng.choice(notes))

    copied = {}
    for function, piece in pieces.items():
        helpers = [rewrite(c) for c in reversed(piece.before + piece.extra)]
        copied[function] = Piece(rewrite(piece.source), [], helpers)   # helpers now come after, reversed
    return variant_of(copied)


def write_class(folder: Path, independent: int = 14, planted: int = 4, seed: int = 0
                ) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """folder/<student>/<assignment>/<assignment>.ipynb for `independent` students and `planted` copies of the
    first few of them; returns the notebooks and the planted pairs."""
    students = independent_students(independent, seed)
    notebooks, pairs = {}, []
    for index, pieces in enumerate(students):
        name = f"student{index:02d}"
        notebooks[name] = build(variant_of(pieces), folder / name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for index in range(planted):
        original, copy = f"student{index:02d}", f"copier{index:02d}"
        notebooks[copy] = build(disguised(students[index], seed + index), folder / copy / ASSIGNMENT /
                                f"{ASSIGNMENT}.ipynb")
        pairs.append((original, copy))
    return notebooks, pairs
