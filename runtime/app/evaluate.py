"""Top-1/top-5 accuracy of a model file on a labelled image folder or the digits split."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..core.errors import UserError
from ..core.preprocess import Preprocessing
from ..core.runner import Runner
from .images.datasets import open_image_set
from .images.pipeline import HostPipeline
from .images.transform import ImageTransform

log = logging.getLogger(__name__)


@dataclass
class Accuracy:
    images: int
    top1: float
    top5: float
    skipped: int = 0

    def to_dict(self) -> dict[str, float | int]:
        return {"images": self.images, "top1": self.top1, "top5": self.top5, "skipped": self.skipped}


def topk_accuracy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    k = min(5, logits.shape[1])
    top = np.argsort(-logits, axis=1)[:, :k]
    return float(np.mean(top[:, 0] == labels)), float(np.mean((top == labels[:, None]).any(axis=1)))


def labelled_batches(
    data: str,
    transform: ImageTransform | Preprocessing,
    labels: list[str] | None,
    batch: int,
    pipeline: HostPipeline | None = None,
    num_classes: int | None = None,
    wnids: list[str] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(images, labels, skipped-so-far) batches from a class-folder tree or `digits` (test
    split), read by runtime.app.images.datasets (the reader calibration uses too). Folder images
    go through `pipeline` (default: one decoding in this process); each skipped file is
    logged with its name and reason. The images array is reused per batch."""
    if isinstance(transform, Preprocessing):
        transform = ImageTransform(transform)
    images = open_image_set(data, labels, split="test", need_labels=True, num_classes=num_classes, wnids=wnids)
    assert images.labels is not None  # need_labels
    skipped = len(images.skipped)
    for skip in images.skipped:
        log.warning("skipped %s: %s", skip.path, skip.reason)
    for b in images.batches(transform, batch, pipeline=pipeline):
        for skip in b.errors:
            log.warning("skipped %s: %s", skip.path, skip.reason)
        skipped += len(b.errors)
        yield b.images, images.labels[b.index], skipped


def evaluate(runner: Runner, batches: Iterable[tuple[np.ndarray, np.ndarray, int]]) -> Accuracy:
    """Top-1/top-5 over (images, labels, skipped-so-far) batches, as labelled_batches yields."""
    logits, labels, skipped = [], [], 0
    for x, y, skipped_so_far in batches:
        skipped = skipped_so_far
        if len(x):  # a batch of only unreadable files still carries the skip count
            logits.append(runner.infer(x))
            labels.append(y)
            classes = logits[-1].shape[1]
            if len(y) and int(y.max()) >= classes:
                raise UserError(
                    f"label {int(y.max())} in the data, but the model has {classes} classes (0..{classes - 1})"
                )
    if not logits:
        raise UserError("no readable labelled images to evaluate")
    top1, top5 = topk_accuracy(np.concatenate(logits), np.concatenate(labels))
    return Accuracy(sum(len(y) for y in labels), top1, top5, skipped)
