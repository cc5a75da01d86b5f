"""The mutation harness (benchmarks/mutation_score.py) can fail: on apply_cfg's mutants it counts every one,
names a survivor it is given, and refuses a run where a "correct" version loses points."""
import sys

from tests.submissions import ROOT

sys.path.insert(0, str(ROOT))
from benchmarks import mutation_score as harness  # noqa: E402

SURVIVOR = '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond) + 0 * noise_cond
'''
NOT_CORRECT = '''
def apply_cfg(noise_uncond, noise_cond, guidance_scale):
    return noise_cond + guidance_scale * (noise_cond - noise_uncond)
'''


def test_the_harness_scores_mutants_and_reports_survivors_and_refusals(tmp_path):
    items = harness.entries(["apply_cfg"], with_written=False)
    mutants = [i for i in items if i.kind == "mutant"]
    assert len(mutants) >= 15 and {i.function for i in items} == {"apply_cfg"}
    items += [harness.Entry("m-apply_cfg-injected", "text_conditioning_guidance", "apply_cfg", "mutant",
                            "injected: + 0 * noise_cond", SURVIVOR),
              harness.Entry("c-apply_cfg-injected", "text_conditioning_guidance", "apply_cfg", "correct",
                            "injected: not correct at all", NOT_CORRECT)]
    found = harness.verdicts(items, harness.grade(items, tmp_path, workers=2))
    lines, healthy = harness.summarise(items, found)
    text = "\n".join(lines)
    assert f"mutation score apply_cfg: {len(mutants)}/{len(mutants) + 1} " in text   # every real mutant caught
    assert "SURVIVED mutant m-apply_cfg-injected" in text and "+ 0 * noise_cond" in text
    assert "REFUSED correct c-apply_cfg-injected" in text and not healthy
    assert found["control-apply_cfg"]["caught"] is False   # the solution itself keeps its points
