"""How strong are the hidden checks? Grade wrong versions of every graded function and count the caught.

For each graded function: AST mutants of the solution's own cell (benchmarks/mutation/operators.py), the
hand-written student mistakes and the correct idioms of benchmarks/mutation/mistakes.py. Each becomes a
submission that is correct except for that one function, and all of them are graded in one run of the
real CLI and sandbox. A mutant or mistake is caught when its function loses points; an equivalent mutant
(benchmarks/mutation/equivalent.py, marked by hand with the reason) is not counted. A correct idiom must
get full marks, and no submission may lose points on a function it did not change.

    python benchmarks/mutation_score.py                       # everything (~600 submissions, minutes)
    python benchmarks/mutation_score.py --functions apply_cfg --no-mistakes

Prints one line per function, `mutation score FUNCTION: caught/counted = P%`, then every survivor.
Exits 1 when a correct idiom loses points or a change costs points on another function.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import assignments  # noqa: E402
from autograder.reports import report  # noqa: E402
from benchmarks.mutation import equivalent, mistakes as written  # noqa: E402
from benchmarks.mutation.operators import mutants  # noqa: E402
from tests.clip_submissions import CLIP_ASSIGNMENT, build_clip, cells  # noqa: E402
from tests.submissions import ASSIGNMENT, build, variant_with  # noqa: E402

LESSONS = {ASSIGNMENT: lambda function, source, path: build(variant_with(**{function: source}), path),
           CLIP_ASSIGNMENT: lambda function, source, path: build_clip(cells(**{function: source}), path)}


@dataclass
class Entry:
    student: str          # the submission's folder
    assignment: str
    function: str
    kind: str             # "mutant", "mistake" or "correct"
    label: str            # the operator or the mistake's name
    source: str


def solution_source(assignment: str, function: str) -> str:
    """The solution notebook's cell that defines `function` (nbgrader's markers are comments)."""
    notebook = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == function:
            return "".join(cell["source"])
    raise KeyError(function)


def entries(functions: list[str], with_written: bool) -> list[Entry]:
    made = []
    for assignment in LESSONS:
        for function in assignments.get(assignment).functions:
            if function not in functions:
                continue
            made.append(Entry(f"control-{function}", assignment, function, "correct", "the solution",
                              solution_source(assignment, function)))
            for mutant in mutants(function, solution_source(assignment, function)):
                made.append(Entry(f"m-{mutant.id}", assignment, function, "mutant",
                                  f"{mutant.operator} (line {mutant.line})", mutant.source))
            if with_written:
                for kind, prefix, table in (("mistake", "s", written.MISTAKES), ("correct", "c", written.CORRECT_IDIOMS)):
                    for name, source in table.get(function, {}).items():
                        made.append(Entry(f"{prefix}-{function}-{name}", assignment, function, kind, name, source))
    return made


def grade(items: list[Entry], folder: Path, workers: int) -> dict[str, dict]:
    for item in items:
        notebook = assignments.get(item.assignment).notebook
        LESSONS[item.assignment](item.function, item.source, folder / "class" / item.student / item.assignment / notebook)
    out = folder / "graded"
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder / "class"), "--out", str(out), "--quiet",
                    "--workers", str(workers), "--call-timeout", "10", "--force"], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL)
    outcomes = {}
    for assignment in LESSONS:
        outcomes.update({f"{assignment}/{s}": o for s, o in report.stored_outcomes(out / assignment).items()})
    return outcomes


def verdicts(items: list[Entry], outcomes: dict[str, dict]) -> dict[str, dict]:
    """Per entry: caught (its function lost points), and the other functions that lost points."""
    result = {}
    for item in items:
        outcome = outcomes.get(f"{item.assignment}/{item.student}", {})
        if outcome.get("grader_failed"):
            result[item.student] = {"caught": None, "collateral": [], "error": "grader error"}
            continue
        totals = report.function_totals(outcome.get("checks", []))
        full = assignments.get(item.assignment).functions
        lost = sorted(f for f, points in full.items() if totals.get(f, (0.0, points))[0] < points - 1e-9)
        result[item.student] = {"caught": item.function in lost,
                                "collateral": [f for f in lost if f != item.function]}
    return result


def changed_lines(item: Entry) -> list[str]:
    """A mutant's edit as the lines it changed; a written mistake whole (without its docstring)."""
    body = [line for line in item.source.strip().splitlines() if line.strip()]
    if item.kind != "mutant":
        return body[:12]
    original = ast.unparse(ast.parse(solution_source(item.assignment, item.function))).splitlines()
    return [line for line in difflib.unified_diff(original, body, lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def summarise(items: list[Entry], found: dict[str, dict]) -> tuple[list[str], bool]:
    lines, healthy = [], True
    marked = equivalent.EQUIVALENT
    for function in dict.fromkeys(item.function for item in items):
        mine = [i for i in items if i.function == function]
        counted = [i for i in mine if i.kind == "mutant" and i.student[2:] not in marked]
        caught = [i for i in counted if found[i.student]["caught"]]
        written_ones = [i for i in mine if i.kind == "mistake"]
        written_caught = [i for i in written_ones if found[i.student]["caught"]]
        share = 100.0 * len(caught) / len(counted) if counted else 100.0
        lines.append(f"mutation score {function}: {len(caught)}/{len(counted)} = {share:.1f}% "
                     f"({len(mine) - len(counted) - len(written_ones) - sum(i.kind == 'correct' for i in mine)} "
                     f"equivalent); student mistakes caught {len(written_caught)}/{len(written_ones)}")
    lines.append("")
    for item in items:
        verdict = found[item.student]
        if item.kind in ("mutant", "mistake") and not verdict["caught"]:
            if item.kind == "mutant" and item.student[2:] in marked:
                continue
            lines.append(f"SURVIVED {item.kind} {item.student} [{item.label}]"
                         + (f" ({verdict['error']})" if verdict.get("error") else "") + ":\n    "
                         + "\n    ".join(changed_lines(item)))
        if item.kind == "correct" and verdict["caught"]:
            healthy = False
            lines.append(f"REFUSED correct {item.student} [{item.label}]")
        if verdict["collateral"]:
            healthy = False
            lines.append(f"COLLATERAL {item.student}: also cost points on {', '.join(verdict['collateral'])}")
    return lines, healthy


def main(argv=None) -> int:
    every = [f for a in LESSONS for f in assignments.get(a).functions]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", default=",".join(every), help="comma-separated (default: all eight)")
    parser.add_argument("--no-mistakes", action="store_true", help="mutants only")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", metavar="DIR", help="build and grade in DIR and keep it")
    args = parser.parse_args(argv)
    items = entries(args.functions.split(","), not args.no_mistakes)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        found = verdicts(items, grade(items, folder, args.workers))
    lines, healthy = summarise(items, found)
    print(f"{len(items)} submissions graded")
    print("\n".join(lines))
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
