"""Which pipeline Exercise 4 is graded with, and the one way it can be missing."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "nota-ai/bk-sdm-small"
_PATH = re.compile(r"(?:/[^\s'\":/]+)+/([^\s'\":/]+)")


def without_paths(text: str) -> str:
    """`text` for a student's eyes: each absolute path cut to its last part (the grader's folders stay its own)."""
    return _PATH.sub(r".../\1", text)


class PipelineUnavailable(Exception):
    """No pipeline can run here (no CUDA, no weights): the GPU checks are reported as not run."""


@dataclass(frozen=True)
class PipelineSpec:
    model: str = DEFAULT_MODEL   # hub id or local folder
    device: str = "cuda"         # "cuda" for the real smoke test; "cpu" for a tiny pipeline in CI

    @property
    def label(self) -> str:
        """The model as a student may read it: a hub id, or a local folder's name (never the grader's paths)."""
        return Path(self.model).name if os.path.isabs(self.model) or os.path.isdir(self.model) else self.model

    @classmethod
    def from_environment(cls) -> "PipelineSpec":
        """The defaults, overridable with AUTOGRADER_SD_MODEL and AUTOGRADER_SD_DEVICE."""
        return cls(os.environ.get("AUTOGRADER_SD_MODEL", DEFAULT_MODEL), os.environ.get("AUTOGRADER_SD_DEVICE", "cuda"))
