"""Training images with labels: CIFAR-10 from a local folder (downloaded and verified when online), or,
by default offline, scikit-learn's bundled handwritten digits. No torchvision needed."""
from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .text_encoder import CIFAR10_CLASSES, DIGIT_NAMES, make_cifar10_captions, make_digit_captions

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"


@dataclass
class LabelledImages:
    dataset: TensorDataset            # (images in [-1, 1] as (N, C, H, W), integer labels)
    caption_fn: Callable              # labels -> captions
    class_names: tuple[str, ...]
    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.dataset.tensors[0].shape[1:])


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_cifar10(root: Path) -> Path:
    """Fetch and unpack CIFAR-10 (python version) into root, refusing an archive with the wrong checksum."""
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    if not archive.exists():
        try:
            urllib.request.urlretrieve(CIFAR10_URL, archive)
        except OSError as error:
            raise FileNotFoundError(f"CIFAR-10 is not in {root / CIFAR10_FOLDER} and could not be downloaded "
                                    f"({error}); copy cifar-10-python.tar.gz there, or use the digits") from None
    if md5_of(archive) != CIFAR10_MD5:
        raise ValueError(f"{archive} has the wrong checksum (expected md5 {CIFAR10_MD5}): delete it and retry")
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return root / CIFAR10_FOLDER


def load_cifar10(root="./data", train=True, download=False) -> LabelledImages:
    folder = Path(root) / CIFAR10_FOLDER
    if not folder.exists():
        if not download:
            raise FileNotFoundError(f"no CIFAR-10 in {folder}")
        folder = download_cifar10(Path(root))
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as stream:
            batch = pickle.load(stream, encoding="bytes")   # the official archive's format
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch[b"labels"])
    pixels = torch.from_numpy(np.concatenate(images)).float() / 127.5 - 1.0
    return LabelledImages(TensorDataset(pixels, torch.tensor(labels)), make_cifar10_captions, CIFAR10_CLASSES,
                          "CIFAR-10")


def load_digits_images() -> LabelledImages:
    """scikit-learn's 1,797 handwritten digits (8x8, values 0-16), scaled to [-1, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = torch.from_numpy(digits.images).float().unsqueeze(1) / 8.0 - 1.0
    return LabelledImages(TensorDataset(pixels, torch.from_numpy(digits.target).long()), make_digit_captions,
                          DIGIT_NAMES, "digits")


def load_default(root="./data", dataset="auto", download=False) -> LabelledImages:
    """CIFAR-10 when it is in root (or dataset="cifar10"), else the bundled digits."""
    if dataset == "digits":
        return load_digits_images()
    if dataset == "cifar10" or (Path(root) / CIFAR10_FOLDER).exists():
        return load_cifar10(root, download=download or dataset == "cifar10")
    return load_digits_images()
