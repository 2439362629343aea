"""Top-1/top-5 accuracy of a model file on a labelled image folder or the digits split."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .preprocess import ImageError, Preprocessing, find_images, load_and_preprocess, preprocess
from .runner import Runner


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
    data: str, cfg: Preprocessing, labels: list[str] | None, batch: int
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(images, labels, skipped-so-far) batches from a class-folder tree or `digits` (test split)."""
    if data == "digits":
        from .datasets import load_digits

        test = load_digits("test")
        for i in range(0, len(test.labels), batch):
            idx = range(i, min(i + batch, len(test.labels)))
            yield np.stack([preprocess(test.image(j), cfg) for j in idx]), test.labels[i : i + batch], 0
        return
    from .datasets import class_index

    root = Path(data)
    if not root.is_dir():
        raise UserError(f"--data {data}: expected a folder of class sub-folders, or 'digits'")
    paths = find_images([root])
    rel = [p.relative_to(root) for p in paths]
    if not paths or any(len(r.parts) < 2 for r in rel):
        raise UserError(f"--data {data}: expected images inside class sub-folders (root/<class>/<image>)")
    index = class_index([r.parts[0] for r in rel], labels)
    skipped = 0
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for path, r in zip(paths, rel, strict=True):
        try:
            xs.append(load_and_preprocess(path, cfg))
        except ImageError:
            skipped += 1
            continue
        ys.append(index[r.parts[0]])
        if len(xs) == batch:
            yield np.stack(xs), np.asarray(ys), skipped
            xs, ys = [], []
    if xs:
        yield np.stack(xs), np.asarray(ys), skipped


def evaluate(runner: Runner, batches: Iterable[tuple[np.ndarray, np.ndarray, int]]) -> Accuracy:
    logits, labels, skipped = [], [], 0
    for x, y, skipped_so_far in batches:
        logits.append(runner.infer(x))
        labels.append(y)
        skipped = skipped_so_far
    if not logits:
        raise UserError("no readable labelled images to evaluate")
    top1, top5 = topk_accuracy(np.concatenate(logits), np.concatenate(labels))
    return Accuracy(sum(len(y) for y in labels), top1, top5, skipped)
