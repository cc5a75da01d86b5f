"""Which pipeline Exercise 4 is graded with, and the one way it can be missing."""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_MODEL = "nota-ai/bk-sdm-small"


class PipelineUnavailable(Exception):
    """No pipeline can run here (no CUDA, no weights): the GPU checks are reported as not run."""


@dataclass(frozen=True)
class PipelineSpec:
    model: str = DEFAULT_MODEL   # hub id or local folder
    device: str = "cuda"         # "cuda" for the real smoke test; "cpu" for a tiny pipeline in CI

    @classmethod
    def from_environment(cls) -> "PipelineSpec":
        """The defaults, overridable with AUTOGRADER_SD_MODEL and AUTOGRADER_SD_DEVICE."""
        return cls(os.environ.get("AUTOGRADER_SD_MODEL", DEFAULT_MODEL), os.environ.get("AUTOGRADER_SD_DEVICE", "cuda"))
