"""Which pipeline Exercise 4 is graded with, and the one way it can be missing."""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_MODEL = "nota-ai/bk-sdm-small"
DEVICE = re.compile(r"cpu|cuda(:\d{1,2})?")
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

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def for_shard(self, index: int, gpus: int | None = None) -> "PipelineSpec":
        """Shard `index`'s pipeline: on a machine with G > 1 GPUs, GPU index mod G, so G shards started there
        hold one pipeline per GPU (an engine that gives each shard its own GPU leaves one visible)."""
        gpus = visible_gpus() if gpus is None else gpus
        return replace(self, device=f"cuda:{index % gpus}") if self.device == "cuda" and gpus > 1 else self

    @classmethod
    def from_environment(cls) -> "PipelineSpec":
        """The defaults, overridable with AUTOGRADER_SD_MODEL and AUTOGRADER_SD_DEVICE."""
        return cls(os.environ.get("AUTOGRADER_SD_MODEL", DEFAULT_MODEL), os.environ.get("AUTOGRADER_SD_DEVICE", "cuda"))


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use (CUDA_VISIBLE_DEVICES, else the driver's list), without importing torch."""
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return len([device for device in chosen.split(",") if device.strip() not in ("", "-1")])
    driver = Path("/proc/driver/nvidia/gpus")
    return len(list(driver.iterdir())) if driver.is_dir() else 0


def device_argument(text: str) -> str:
    """argparse type of --sd-device."""
    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected cpu, cuda or cuda:N")
    return text
