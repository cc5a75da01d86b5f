"""The two sweeps Exercise 4's checks ask a student's generate_guidance_sweep for, and the trusted images they need.

Two sweeps with nothing in common, none of whose values is a default or appears in the notebooks: a sweep
that hard-codes a seed, a prompt, the scales, their number or the steps is caught. w = 1 is the edge where
the pipeline stops guiding. Few steps keep the grading run cheap on a CPU stand-in; 12 is not 30 (the
signature's default), 15 (the notebook's CPU setting) or 50 (diffusers').
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Inputs:
    prompt: str
    scales: tuple
    seed: int
    steps: int


MAIN = Inputs("an old clock tower in the snow, ink drawing", (1, 2.5, 6, 9.5, 14), 20231, 12)
OTHER = Inputs("a small boat on a calm lake at dawn", (8, 1.5, 4), 777, 7)

# The pipeline calls of the trusted images, (prompt, guidance scale, steps, seed): every submission's grading
# needs them, so a run's pipeline server makes them as soon as it has loaded (pipeline/server.py).
REFERENCE_CALLS = tuple((inputs.prompt, float(scale), inputs.steps, inputs.seed)
                        for inputs in (MAIN, OTHER) for scale in inputs.scales)
