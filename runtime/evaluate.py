"""Top-1/top-5 accuracy of a model file on a labelled image folder or the digits split."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .images.inputs import collect_images
from .images.pipeline import HostPipeline, ImageTransform
from .images.preprocess import Preprocessing
from .runner import Runner

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
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(images, labels, skipped-so-far) batches from a class-folder tree or `digits` (test
    split). Folder images go through `pipeline` (default: one decoding in this process);
    each skipped file is logged with its reason. The images array is reused per batch."""
    if isinstance(transform, Preprocessing):
        transform = ImageTransform(transform)
    if data == "digits":
        from .images.datasets import load_digits

        test = load_digits("test")
        buffer = transform.empty_batch(batch)
        for i in range(0, len(test.labels), batch):
            idx = range(i, min(i + batch, len(test.labels)))
            for row, j in enumerate(idx):
                buffer[row] = transform.from_image(test.image(j))
            yield buffer[: len(idx)], test.labels[i : i + batch], 0
        return
    from .images.datasets import class_index

    root = Path(data)
    if not root.is_dir():
        raise UserError(f"--data {data}: expected a folder of class sub-folders, or 'digits'")
    found = collect_images([root])
    rel = [p.relative_to(root) for p in found.paths]
    if not found.paths or any(len(r.parts) < 2 for r in rel):
        raise UserError(f"--data {data}: expected images inside class sub-folders (root/<class>/<image>)")
    index = class_index([r.parts[0] for r in rel], labels)
    targets = np.asarray([index[r.parts[0]] for r in rel], dtype=np.int64)
    skipped = len(found.skipped)
    for skip in found.skipped:
        log.warning("skipped %s: %s", skip.path, skip.reason)
    own = pipeline is None
    pipe = pipeline or HostPipeline(transform, batch, 0)
    if pipe.batch != batch or pipe.transform != transform:
        raise UserError("labelled_batches: the pipeline's batch size or transform differs from the one asked for")
    try:
        start = 0
        for b in pipe.batches(found.paths):
            for reason in b.errors.values():
                log.warning("skipped %s", reason)
            skipped += len(b.errors)
            images = b.images if b.images is not None else transform.empty_batch(0)
            yield images, targets[start : start + len(b.paths)][b.ok], skipped
            start += len(b.paths)
    finally:
        if own:
            pipe.close()


def evaluate(runner: Runner, batches: Iterable[tuple[np.ndarray, np.ndarray, int]]) -> Accuracy:
    """Top-1/top-5 over (images, labels, skipped-so-far) batches, as labelled_batches yields."""
    logits, labels, skipped = [], [], 0
    for x, y, skipped_so_far in batches:
        skipped = skipped_so_far
        if len(x):  # a batch of only unreadable files still carries the skip count
            logits.append(runner.infer(x))
            labels.append(y)
    if not logits:
        raise UserError("no readable labelled images to evaluate")
    top1, top5 = topk_accuracy(np.concatenate(logits), np.concatenate(labels))
    return Accuracy(sum(len(y) for y in labels), top1, top5, skipped)
