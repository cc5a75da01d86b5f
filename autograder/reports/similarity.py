"""Which submissions look alike, on the code the grader graded: evidence for a person to read, never a penalty.

For each graded function, every submission's function and helpers (intake/graded_code.py: comments,
layout and helper order already gone) is fingerprinted with copydetect (winnowing over Pygments tokens,
names replaced by placeholders), less every fingerprint of the released stub and the instructor's
solution. Two honest students who wrote a three-line exercise the obvious way share fingerprints with
many others; a copied pair shares fingerprints nobody else has. So each shared fingerprint counts by how
rare it is in the class (inverse document frequency), and a pair's score is the weighted share of their
fingerprints they have in common, over all graded functions:

    score(a, b) = sum over functions of idf-weight(A & B) / sum over functions of idf-weight(A | B)

All pairs are scored at once with a sparse matrix product (one function at a time, so memory grows with
the class squared, not with its code); only the pairs shown are compared region by region
(copydetect.compare_files) for the side-by-side view.
"""
from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass, field

import numpy as np

NOISE = 20       # copydetect's noise threshold: k-grams of this many filtered characters
GUARANTEE = 24   # a match this long is always found (window = GUARANTEE - NOISE + 1)
NOTICE = ("Similarity is evidence for a person to weigh, never a penalty: short exercises make honest "
          "students look alike, so pairs are ranked relative to this class, and the stub and the "
          "instructor's solution are left out of every comparison.")


def _fingerprint(source: str, name: str, boilerplate=None, window: int = GUARANTEE - NOISE + 1):
    from copydetect import CodeFingerprint

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))   # copydetect warns on empty code
    return CodeFingerprint(f"{name}.py", NOISE, window, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(source))


_made: dict[tuple[str, str], object] = {}


def fingerprint_of(code: str, common: str):
    """`code`'s fingerprint less every fingerprint of `common` (the stub and the solution), made once until
    forget(): identical code (untouched stubs, above all) once, and the code of a grade run's outcomes ahead of
    the ranking, as the grade command hands each over (class_report.SimilarityAhead)."""
    key = (code, common)
    if key not in _made:
        _made[key] = _fingerprint(code, "submission", _boilerplate(common))
    return _made[key]


def forget() -> None:
    """Lets the fingerprints go once the reports are written (a class's code, a few MB)."""
    _made.clear()
    _boilerplate.cache_clear()


@functools.lru_cache(maxsize=64)
def _boilerplate(common: str) -> tuple:
    return tuple(_fingerprint(common, "common", window=1).hashes)


@dataclass
class Pair:
    a: str
    b: str
    score: float
    z: float                                                  # standard deviations above the class's mean pair
    by_function: dict[str, float] = field(default_factory=dict)
    regions: dict[str, tuple[list, list]] = field(default_factory=dict)   # function -> (segments of a, of b)


@dataclass
class Ranking:
    pairs: list[Pair]           # the top pairs, most alike first
    students: int
    compared: int               # pairs scored
    functions: list[str]
    notice: str = NOTICE


def _segments(code: str, slices) -> list[tuple[str, bool]]:
    """The code cut into (text, matched) pieces for the side-by-side view."""
    pieces, at = [], 0
    starts, ends = (np.asarray(s, dtype=int) for s in slices)
    for start, end in zip(starts, ends):
        pieces += [(code[at:start], False), (code[start:end], True)]
        at = end
    return [piece for piece in pieces + [(code[at:], False)] if piece[0]]


def _pair_scores(prints: dict[str, object], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Weighted intersections and weighted sizes, for every pair of students of one function."""
    from scipy import sparse

    vocabulary: dict[int, int] = {}
    rows, columns = [], []
    for student, fingerprint in prints.items():
        for value in fingerprint.hashes:
            rows.append(index[student])
            columns.append(vocabulary.setdefault(int(value), len(vocabulary)))
    size = len(index)
    if not columns:
        return np.zeros((size, size), np.float32), np.zeros(size, np.float32)
    holds = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(size, len(vocabulary)))
    holders = np.asarray(holds.sum(axis=0)).ravel()
    weight = np.log(max(2, len(prints)) / holders).astype(np.float32)   # held by everyone: 0
    weighted = holds.multiply(weight).tocsr()
    shared = (weighted @ holds.T).toarray().astype(np.float32)
    return shared, np.asarray(weighted.sum(axis=1)).ravel().astype(np.float32)


def rank(codes: dict[str, dict[str, str]], common: dict[str, str], top: int = 25, shown: int = 10) -> Ranking:
    """codes: student -> graded function -> code; common: graded function -> stub and solution code.
    The `top` pairs most alike; the first `shown` of them with their matched regions per function."""
    students = sorted(codes)
    index = {student: i for i, student in enumerate(students)}
    functions = sorted({f for per in codes.values() for f in per} | set(common))
    size = len(students)
    shared_all = np.zeros((size, size), np.float32)
    union_all = np.zeros((size, size), np.float32)
    per_function: dict[str, np.ndarray] = {}
    prints_of: dict[str, dict[str, object]] = {}
    for function in functions:
        prints = {s: fingerprint_of(codes[s][function], common.get(function, ""))
                  for s in students if codes[s].get(function)}
        prints_of[function] = prints
        shared, sizes = _pair_scores(prints, index)
        union = sizes[:, None] + sizes[None, :] - shared
        with np.errstate(invalid="ignore", divide="ignore"):
            per_function[function] = np.where(union > 0, shared / union, 0.0).astype(np.float32)
        shared_all += shared
        union_all += union
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(union_all > 0, shared_all / union_all, 0.0)
    upper = np.triu_indices(size, k=1)
    values = score[upper]
    mean, spread = (float(values.mean()), float(values.std())) if len(values) else (0.0, 0.0)
    order = np.argsort(-values, kind="stable")[:top]
    pairs = []
    for at in order:
        i, j = int(upper[0][at]), int(upper[1][at])
        if values[at] <= 0:
            break
        pair = Pair(students[i], students[j], float(values[at]),
                    (float(values[at]) - mean) / spread if spread > 0 else 0.0,
                    {f: float(per_function[f][i, j]) for f in functions})
        if len(pairs) < shown:
            pair.regions = _regions(prints_of, pair.a, pair.b)
        pairs.append(pair)
    return Ranking(pairs, size, len(values), functions)


def _regions(prints_of: dict[str, dict[str, object]], a: str, b: str) -> dict[str, tuple[list, list]]:
    from copydetect import compare_files

    regions = {}
    for function, prints in prints_of.items():
        if a in prints and b in prints:
            overlap, _, (slices_a, slices_b) = compare_files(prints[a], prints[b])
            if overlap:
                regions[function] = (_segments(prints[a].raw_code, slices_a), _segments(prints[b].raw_code, slices_b))
    return regions
