"""The similarity pass on a generated class: planted copies rank above every pair of independent students; what
every submission shares (the stub, the instructor's solution) counts for nothing; the graded code is the one
the grading run uses. Notebooks only: nothing is graded here."""
from __future__ import annotations

import pytest

from autograder import assignments
from autograder.intake.graded_code import graded_code, stub_and_solution
from autograder.reports import similarity
from tests.clip_submissions import source_cell
from tests.similarity_corpus import FUNCTIONS, write_class
from tests.submissions import ASSIGNMENT, CORRECT, PARITY, ROOT, Variant, build, variant_with

LESSON = assignments.get(ASSIGNMENT)


@pytest.fixture(scope="module")
def planted_class(tmp_path_factory):
    notebooks, pairs = write_class(tmp_path_factory.mktemp("class"), independent=14, planted=4)
    codes = {student: graded_code(path, LESSON) for student, path in notebooks.items()}
    every_pair = len(codes) * (len(codes) - 1) // 2
    return similarity.rank(codes, stub_and_solution(LESSON), top=every_pair, shown=len(pairs)), pairs


@pytest.mark.quick
def test_every_planted_copy_ranks_above_every_independent_pair(planted_class):
    ranking, pairs = planted_class
    planted = {frozenset(pair) for pair in pairs}
    copies = [p for p in ranking.pairs if frozenset((p.a, p.b)) in planted]
    honest = [p for p in ranking.pairs if frozenset((p.a, p.b)) not in planted]
    assert len(copies) == len(pairs) and honest   # honest students do share code: short exercises look alike
    assert min(p.score for p in copies) > max(p.score for p in honest)
    assert [frozenset((p.a, p.b)) for p in ranking.pairs[:len(pairs)]] == [frozenset((p.a, p.b)) for p in copies]
    assert min(p.z for p in copies) > 2   # far above the class's typical pair


def test_planted_pairs_show_their_matching_regions_side_by_side(planted_class):
    ranking, pairs = planted_class
    original, copy = pairs[0]
    pair = next(p for p in ranking.pairs if {p.a, p.b} == {original, copy})
    assert set(pair.regions) == set(FUNCTIONS)
    for function, (left, right) in pair.regions.items():
        for side in (left, right):
            assert any(matched for _, matched in side) and function in "".join(text for text, _ in side)
    # The copier's own names show (the matching is on normalised code, the view on what they wrote).
    copied_side = "".join(text for text, _ in pair.regions["cross_attention"][0 if pair.a == copy else 1])
    assert any(prefix in copied_side for prefix in ("my_", "the_", "tmp_", "val_"))


def test_the_stub_and_the_solution_count_for_nothing(tmp_path):
    solution_notebook = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    import nbformat

    solved = nbformat.read(solution_notebook, as_version=4)
    solution = Variant(**{f: source_cell(solved, f).source for f in FUNCTIONS})
    stubs = Variant(cross_attention=None, apply_cfg=None)
    notebooks = {name: build(variant, tmp_path / name / f"{ASSIGNMENT}.ipynb")
                 for name, variant in (("stub1", stubs), ("stub2", stubs), ("sol1", solution), ("sol2", solution),
                                       ("own", CORRECT["einsum"]))}
    codes = {name: graded_code(path, LESSON) for name, path in notebooks.items()}
    assert similarity.rank(codes, stub_and_solution(LESSON)).pairs == []
    # Not blind: without subtracting them, the identical pairs are the top of the list.
    unsubtracted = similarity.rank(codes, {})
    assert {frozenset((p.a, p.b)) for p in unsubtracted.pairs[:2]} == {frozenset(("stub1", "stub2")),
                                                                       frozenset(("sol1", "sol2"))}


def test_graded_code_is_what_the_run_defines(tmp_path):
    helpers = graded_code(build(CORRECT["manual_softmax_helpers_constants"], tmp_path / "a.ipynb"), LESSON)
    assert helpers["cross_attention"].startswith("def cross_attention")
    for helper in ("def project", "def stable_softmax", "EXPONENT = -0.5", "AXIS = -1"):
        assert helper in helpers["cross_attention"]
    later = graded_code(build(CORRECT["lerp_and_redefined_later"], tmp_path / "b.ipynb"), LESSON)
    assert "torch.lerp" in later["apply_cfg"] and "first try" not in later["apply_cfg"]
    nested = graded_code(build(PARITY["defined_inside_try"], tmp_path / "c.ipynb"), LESSON)
    assert nested["cross_attention"].startswith("def cross_attention")
    # Another graded function is compared on its own, not as a helper; comments are gone.
    plain = graded_code(build(variant_with(apply_cfg="def apply_cfg(noise_uncond, noise_cond, guidance_scale):\n"
                                                     "    # mine\n    return torch.lerp(noise_uncond, noise_cond, "
                                                     "guidance_scale)\n"), tmp_path / "d.ipynb"), LESSON)
    assert "def apply_cfg" not in plain["guidance_norms"] and "# mine" not in plain["apply_cfg"]
    assert graded_code(tmp_path / "missing.ipynb", LESSON) == dict.fromkeys(LESSON.functions, "")


def test_a_worker_keeps_the_graded_code_unless_it_is_huge_or_cannot_be_had(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from autograder.grading import pytest_plugin
    from autograder.intake.submission import extract_student_code, locked_cells

    def as_the_worker_extracts(path):
        code = extract_student_code(path, locked_cells(LESSON.release_notebook), LESSON.definitions_only)
        return SimpleNamespace(code=code, assignment=LESSON)

    plain = build(CORRECT["manual_softmax_helpers_constants"], tmp_path / "a.ipynb")
    assert pytest_plugin.graded_code_to_keep(as_the_worker_extracts(plain)) == graded_code(plain, LESSON)
    # Five cells of 45,000 characters each (a cell may hold 50,000), all reached from cross_attention.
    padding = [f"PADDING_{i} = '" + "x" * 45_000 + "'\n" for i in range(5)]
    bulky = variant_with(cross_attention="def cross_attention(Q, K, V):\n    return "
                                         + " + ".join(f"PADDING_{i}" for i in range(5)) + ", Q, K, V\n",
                         extra_cells=padding)
    bulky_path = build(bulky, tmp_path / "b.ipynb")
    assert len(graded_code(bulky_path, LESSON)["cross_attention"]) > pytest_plugin.MAX_KEPT_CODE   # the report's to read
    assert pytest_plugin.graded_code_to_keep(as_the_worker_extracts(bulky_path)) is None
    assert pytest_plugin.graded_code_to_keep(SimpleNamespace(code=None, assignment=LESSON)) is None

    def broken(*args, **kwargs):
        raise RecursionError("a notebook the grader cannot take apart")
    monkeypatch.setattr(pytest_plugin, "graded_code_of", broken)   # the report reads the notebook itself then
    assert pytest_plugin.graded_code_to_keep(as_the_worker_extracts(plain)) is None
