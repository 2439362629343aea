"""scikit-learn's handwritten digits as images, with the project's fixed split.

The 1,797 8x8 images ship inside scikit-learn (no download). The split below is fixed
by a seed: `scripts/train_digits.py` trains on "train" only, calibration draws from
"train", and every accuracy this project reports is on "test".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import require

SPLIT_SEED = 20220124  # the ConvMixer paper's arXiv date
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Digits:
    images: np.ndarray  # uint8 [N, 8, 8], 0 = background
    labels: np.ndarray  # int64 [N]

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i], "L")


def load_digits(split: str) -> Digits:
    """The "train" or "test" part of the digits set."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, got {split!r}")
    sk = require("sklearn.datasets", "install scikit-learn for the digits data set: pip install scikit-learn")
    bunch = sk.load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    n_test = int(round(len(labels) * TEST_FRACTION))
    index = {"test": np.sort(order[:n_test]), "train": np.sort(order[n_test:]), "all": np.arange(len(labels))}[split]
    return Digits(images[index], labels[index])


def class_index(folder_names: list[str], labels: list[str] | None) -> dict[str, int]:
    """Class sub-folder name -> model class index: by label name, else by integer
    name, else in sorted order (torchvision ImageFolder's convention)."""
    import logging

    names = sorted(set(folder_names))
    if labels and all(n in labels for n in names):
        return {n: labels.index(n) for n in names}
    if all(n.isdigit() for n in names):
        return {n: int(n) for n in names}
    logging.getLogger(__name__).warning(
        "class folders do not match the model's labels; numbering them in sorted order (ImageFolder convention)"
    )
    return {n: i for i, n in enumerate(names)}
