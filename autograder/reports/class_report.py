"""A grading run -> one self-contained HTML page per assignment for the instructor (OUT/<assignment>/class-report.html).

How the class did (score distribution, points per graded function), item analysis (each check's pass
rate, hardest first, with its most common failure messages and how many students got each), what could
not be graded and why, time per submission and the slowest, the regrade diff against a previous run,
and the pairs of submissions whose graded code looks most alike. Figures are drawn with matplotlib and
inlined as PNG data; the page is rendered by a Jinja2 template (templates/class_report.html.j2) with
autoescaping, so student text shows as text. It loads nothing from the network.
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import statistics
import threading
from collections import Counter
from pathlib import Path

from autograder import assignments
from autograder.reports import regrade_diff, report

TEMPLATE = "class_report.html.j2"
REPORT_NAME = "class-report.html"
MESSAGES_SHOWN = 3      # most common failure messages per check
SLOWEST_SHOWN = 10


def _figure(width: float, height: float):
    """A figure drawn straight to PNG: pyplot's window machinery would cost more than the drawing."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots()


def _figure_png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _histogram(values: list[float], title: str, xlabel: str, bins) -> str:
    from matplotlib.ticker import MaxNLocator

    figure, axis = _figure(4.6, 2.8)
    axis.hist(values, bins=bins, color="#3b6ea8", edgecolor="white")
    axis.set(title=title, xlabel=xlabel, ylabel="submissions")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _figure_png(figure)


def _function_bars(shares: dict[str, float]) -> str:
    figure, axis = _figure(4.6, 0.8 + 0.4 * len(shares))
    names = list(shares)[::-1]
    axis.barh(names, [100 * shares[n] for n in names], color="#5a9e6f")
    axis.set(xlim=(0, 100), xlabel="mean share of the points (%)", title="Points per graded function")
    return _figure_png(figure)


def _first_line(message: str, limit: int = 240) -> str:
    """A message as one line (a failure's first lines often end in a colon), cut to `limit`."""
    line = " ".join(str(message).split()) or "(no message)"
    return line if len(line) <= limit else line[:limit] + "..."


def item_analysis(outcomes: dict[str, dict]) -> list[dict]:
    """Per check: how many it counted for, the share that passed, and its commonest failure messages."""
    items: dict[str, dict] = {}
    for outcome in outcomes.values():
        for check in outcome.get("checks", []):
            item = items.setdefault(check["name"], {"name": check["name"], "points": check["max_score"],
                                                    "counted": 0, "passed": 0, "errors": 0, "messages": Counter()})
            if check["outcome"] == "grader_error":
                item["errors"] += 1
            elif report.counted(check):
                item["counted"] += 1
                item["passed"] += check["outcome"] == "passed"
                if check["outcome"] == "failed":
                    item["messages"][_first_line(check.get("message", ""))] += 1
    for item in items.values():
        item["share"] = item["passed"] / item["counted"] if item["counted"] else None
        item["failed"] = item["counted"] - item["passed"]
        item["messages"] = item["messages"].most_common(MESSAGES_SHOWN)
    return sorted(items.values(), key=lambda i: (1.0 if i["share"] is None else i["share"], i["name"]))


def not_graded(outcomes: dict[str, dict]) -> list[dict]:
    """Submissions with nothing graded, a notebook that could not run, or a grader error, with the reason."""
    rows = []
    for student, outcome in sorted(outcomes.items()):
        errors = [c["name"] for c in outcome.get("checks", []) if c["outcome"] == "grader_error"]
        if outcome.get("grader_failed") or errors:
            reason = outcome.get("grader_log") or f"grader error in {len(errors)} checks: {', '.join(errors[:3])}"
            rows.append({"student": student, "kind": "grader error", "reason": _first_line(reason, 500)})
        elif not outcome.get("checks") or outcome.get("notebook_error"):
            rows.append({"student": student, "kind": "not graded",
                         "reason": _first_line(regrade_diff.problem(outcome) or "no check ran", 500)})
    return rows


def function_shares(outcomes: dict[str, dict], assignment: assignments.Assignment) -> dict[str, float]:
    sums = {f: [0.0, 0.0] for f in assignment.functions}
    for outcome in outcomes.values():
        for function, (score, maximum) in report.function_totals(outcome.get("checks", [])).items():
            if function in sums:
                sums[function][0] += score
                sums[function][1] += maximum
    return {f: (s / m if m else 0.0) for f, (s, m) in sums.items()}


def summary(outcomes: dict[str, dict], assignment: assignments.Assignment) -> dict:
    """Everything the page shows about the class's scores and times (no figures)."""
    totals = {s: report.outcome_totals(o) for s, o in outcomes.items()}
    scores = [score for score, _ in totals.values()]
    times = {s: float(o["execution_time"]) for s, o in outcomes.items() if o.get("execution_time") is not None}
    return {
        "assignment": assignment, "students": len(outcomes), "maximum": assignment.points,
        "mean": statistics.fmean(scores) if scores else 0.0, "median": statistics.median(scores) if scores else 0.0,
        "full_marks": sum(score >= maximum > 0 for score, maximum in totals.values()),
        "items": item_analysis(outcomes), "problems": not_graded(outcomes),
        "function_shares": function_shares(outcomes, assignment),
        "times": times, "total_time": sum(times.values()),
        "slowest": sorted(times.items(), key=lambda pair: -pair[1])[:SLOWEST_SHOWN],
    }


def figures(facts: dict, scores: list[float]) -> dict[str, str]:
    maximum = facts["maximum"] or 1
    shown = {"scores": _histogram(scores, "Score distribution", f"total (of {maximum:g})",
                                  bins=[i * maximum / 20 for i in range(21)])}
    if facts["function_shares"]:
        shown["functions"] = _function_bars(facts["function_shares"])
    if facts["times"]:
        shown["times"] = _histogram(list(facts["times"].values()), "Grading time per submission", "seconds", bins=20)
    return shown


def kept_code(outcome: dict, assignment: assignments.Assignment) -> dict[str, str] | None:
    """The graded code an outcome kept as it was graded (None from an older grader, or for a very large notebook)."""
    kept = outcome.get("graded_code")
    if isinstance(kept, dict) and set(kept) == set(assignment.functions):
        return {function: str(code) for function, code in kept.items()}
    return None


def similarity_of(outcomes: dict[str, dict], assignment: assignments.Assignment, top: int = 25):
    """The ranking of the pairs of graded code (similarity.py): the code each outcome kept as it was graded, else
    (an outcome of an older grader, a very large notebook) the code in the notebook at its stored path."""
    from autograder.intake.graded_code import graded_code, stub_and_solution
    from autograder.reports import similarity

    codes, missing = {}, []
    for student, outcome in sorted(outcomes.items()):
        path, kept = outcome.get("submission"), kept_code(outcome, assignment)
        if kept is not None:
            codes[student] = kept
        elif path and Path(path).is_file():
            codes[student] = graded_code(Path(path), assignment)
        else:
            missing.append(student)
    ranking = similarity.rank(codes, stub_and_solution(assignment), top=top)
    return ranking, missing


class SimilarityAhead:
    """Fingerprints each outcome's graded code as the grade command stores it. The ranking runs after the last
    submission, while one CPU has nothing else to do; made there, the fingerprints (~1 ms of CPU per function
    and distinct submission, after ~0.2 s for the tokenizer's first use) kept a class of 200 that much longer.
    Outcomes kept from an earlier run, and those without kept code, are still fingerprinted there."""

    def __init__(self):
        self._common: dict[str, dict[str, str]] = {}

    def add(self, outcome: dict, assignment: assignments.Assignment) -> None:
        from autograder.intake.graded_code import stub_and_solution
        from autograder.reports import similarity

        code = kept_code(outcome, assignment)
        if code is None:
            return
        if assignment.name not in self._common:
            self._common[assignment.name] = stub_and_solution(assignment)
        for function, text in code.items():
            if text:
                similarity.fingerprint_of(text, self._common[assignment.name].get(function, ""))


def warm_up() -> threading.Thread:
    """Imports what the report will need, in a thread: the grade command calls it while its first CPU
    would otherwise wait for the grading processes to start, not after the last submission."""
    def imports():
        import copydetect  # noqa: F401
        import jinja2  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.ticker  # noqa: F401
        import scipy.sparse  # noqa: F401

    thread = threading.Thread(target=imports, name="class report imports", daemon=True)
    thread.start()
    return thread


def render(context: dict) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(loader=PackageLoader("autograder.reports", "templates"),
                              autoescape=select_autoescape(default=True, default_for_string=True))
    return environment.get_template(TEMPLATE).render(**context)


def write(out_dir: Path, name: str, previous: Path | None = None, with_similarity: bool = True) -> Path:
    """OUT/<name>/class-report.html from the outcomes stored there; `previous`: an earlier run's --out folder."""
    assignment = assignments.get(name)
    outcomes = report.stored_outcomes(Path(out_dir) / name)
    facts = summary(outcomes, assignment)
    context = {**facts, "figures": figures(facts, [report.outcome_totals(o)[0] for o in outcomes.values()]),
               "generated": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "out_dir": str(out_dir)}
    if previous is not None:
        context["moves"] = [m for m in regrade_diff.compare(previous, out_dir) if m.assignment == name]
        context["previous"] = str(previous)
    if with_similarity:
        context["ranking"], context["not_compared"] = similarity_of(outcomes, assignment)
    path = Path(out_dir) / name / REPORT_NAME
    report.write_atomically(path, render(context))
    return path
