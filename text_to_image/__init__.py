"""Lesson 2's library: a text-conditional DiT trained with flow matching and sampled with CFG. Both lessons'
notebooks also take their set-up (course.py) and offline stand-ins (offline_clip.py, offline_pipeline.py)
from it. Importing the package itself needs nothing beyond Python, so a notebook's first cell can use it to
install what is missing."""


def get_device():
    """CUDA if present, then Apple's MPS, else the CPU (a torch.device)."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
