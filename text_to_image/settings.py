"""How big a run of the lesson's notebook is: the lesson's own on a GPU, a smaller one on a CPU.

`quick=True` is the notebook's documented knob (QUICK_RUN) for a slow laptop: a third of the training epochs
(QUICK_EPOCHS), which are nearly all of a CPU run's time; every figure still shows its point.

Environment variables override each choice, for an instructor's release build or a course's CI
(students never need them): CLIP_MODEL, T2I_DATA, T2I_DATASET, T2I_SMALL=1, T2I_EPOCHS,
T2I_SAMPLE_STEPS.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class LessonSettings:
    clip_model: str      # hub id or a local folder
    data_root: str
    dataset: str         # "cifar10", "digits", or "auto" (CIFAR-10 if it is in data_root, else the digits)
    small: bool          # a tiny model and a short run
    epochs: int
    sample_steps: int

    def __str__(self):
        return (f"CLIP: {self.clip_model} | data: {self.dataset} | epochs: {self.epochs} | "
                f"sampling steps: {self.sample_steps}{' | tiny model' if self.small else ''}")


EPOCHS, SAMPLE_STEPS = 30, 50   # the lesson's run
QUICK_EPOCHS = 10               # quick=True


def lesson_settings(device, quick: bool = False) -> LessonSettings:
    small = os.environ.get("T2I_SMALL") == "1"
    on_gpu = getattr(device, "type", str(device)) == "cuda"
    epochs, sample_steps = (2, 10) if small else (QUICK_EPOCHS if quick else EPOCHS, SAMPLE_STEPS)
    return LessonSettings(
        clip_model=os.environ.get("CLIP_MODEL", "openai/clip-vit-base-patch32"),
        data_root=os.environ.get("T2I_DATA", "./data"),
        dataset=os.environ.get("T2I_DATASET", "cifar10" if on_gpu else "auto"),
        small=small,
        epochs=int(os.environ.get("T2I_EPOCHS", str(epochs))),
        sample_steps=int(os.environ.get("T2I_SAMPLE_STEPS", str(sample_steps))),
    )
