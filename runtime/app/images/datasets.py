"""Image sets that `evaluate` and calibration read: a folder (class sub-folders give
labels) or scikit-learn's handwritten digits, through the one decode pipeline.

`open_image_set` is the one place that turns `--data` into images and labels, and
`ImageSet.batches` the one place that decodes them (runtime.app.images.pipeline), so both
commands skip and name the same bad files for the same reasons.

The 1,797 8x8 digits images ship inside scikit-learn (no download). The split below is
fixed by a seed: `scripts/train_digits.py` trains on "train" only, calibration draws from
"train", and every accuracy this project reports is on "test".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ...core.errors import UserError, require
from .inputs import Skipped, collect_images
from .pipeline import HostPipeline
from .transform import ImageTransform

log = logging.getLogger(__name__)

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


def class_index(folder_names: list[str], labels: list[str] | None, wnids: list[str] | None = None) -> dict[str, int]:
    """Class sub-folder name -> model class index: by label name, else by ImageNet WordNet
    ID (n01440764/..., when model.json lists them: a subset of classes keeps its numbers),
    else by integer name, else in sorted order (torchvision ImageFolder's convention)."""
    names = sorted(set(folder_names))
    if labels and all(n in labels for n in names):
        return {n: labels.index(n) for n in names}
    if wnids and all(n in wnids for n in names):
        return {n: wnids.index(n) for n in names}
    if all(n.isdigit() for n in names):
        return {n: int(n) for n in names}
    wnid_like = all(len(n) == 9 and n[0] == "n" and n[1:].isdigit() for n in names)
    log.warning(
        "class folders do not match the model's labels%s; numbering them in sorted order (ImageFolder convention)",
        (" or its WordNet IDs" if wnids else "; model.json lists no WordNet IDs (re-export the model to add them)")
        if wnid_like
        else "",
    )
    return {n: i for i, n in enumerate(names)}


@dataclass
class ImageBatch:
    """Decoded samples of one batch: `images[r]` is item `index[r]` of the set. `images` may
    be a view of the pipeline's buffer, valid until the next batch."""

    images: np.ndarray
    index: np.ndarray  # int64 positions in the set, in order
    errors: list[Skipped]  # items of this batch that could not be used, with the reason


@dataclass
class ImageSet:
    """Images to read and their labels (None: an unlabelled folder)."""

    description: str
    keys: list[str]  # file paths, or "digits:test:17"
    labels: np.ndarray | None  # int64 [N]
    skipped: list[Skipped] = field(default_factory=list)  # found while walking, never readable
    root: Path | None = None  # the folder; None for digits
    digits: Digits | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def batches(
        self,
        transform: ImageTransform,
        batch: int,
        indices: Sequence[int] | None = None,
        pipeline: HostPipeline | None = None,
    ) -> Iterator[ImageBatch]:
        """Decode items `indices` (default all) in order, `batch` at a time. Files go through
        `pipeline` (default: a pipeline decoding in this process); bad ones come back in
        `errors`, named by path, with the pipeline's reason."""
        order = np.arange(len(self.keys)) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.digits is not None:
            buffer = transform.empty_batch(batch)
            for start in range(0, len(order), batch):
                chunk = order[start : start + batch]
                for row, i in enumerate(chunk):
                    buffer[row] = transform.from_image(self.digits.image(int(i)))
                yield ImageBatch(buffer[: len(chunk)], chunk, [])
            return
        own = pipeline is None
        pipe = pipeline or HostPipeline(transform, batch, 0)
        if pipe.batch != batch or pipe.transform != transform:
            raise UserError("ImageSet.batches: the pipeline's batch size or transform differs from the one asked for")
        try:
            start = 0
            for b in pipe.batches([self.keys[i] for i in order]):
                chunk = order[start : start + len(b.paths)]
                start += len(b.paths)
                errors = [Skipped(b.paths[i], reason) for i, reason in sorted(b.errors.items())]
                images = b.images if b.images is not None else transform.empty_batch(0)
                yield ImageBatch(images, chunk[b.ok], errors)
        finally:
            if own:
                pipe.close()


def _check_labels(where: str, labels: np.ndarray, num_classes: int | None, names: dict[int, str]) -> None:
    """Refuse labels the model cannot predict: they would count as silent misses."""
    bad = labels[(labels < 0) | (labels >= num_classes)] if num_classes else labels[labels < 0]
    if len(bad):
        label = int(bad[0])
        what = f"class folder {names[label]!r} is label {label}" if label in names else f"label {label}"
        limit = f"the model has {num_classes} classes (0..{num_classes - 1})" if num_classes else "labels start at 0"
        raise UserError(f"--data {where}: {what}, but {limit}")


def open_image_set(
    data: str,
    labels: list[str] | None,
    split: str = "test",
    need_labels: bool = False,
    num_classes: int | None = None,
    wnids: list[str] | None = None,
) -> ImageSet:
    """`--data` -> the images to read: "digits" (its `split`) or a folder, walked as
    classify walks one (runtime.app.images.inputs). A folder whose images all sit in class
    sub-folders is labelled (see `class_index`); `need_labels` refuses one that is not.
    Labels outside 0..num_classes-1 (default: the number of `labels`) are refused."""
    num_classes = num_classes or (len(labels) if labels else None)
    if data == "digits":
        digits = load_digits(split)
        _check_labels(data, digits.labels, num_classes, {})
        keys = [f"digits:{split}:{i}" for i in range(len(digits.labels))]
        return ImageSet(f"scikit-learn digits, {split} split", keys, digits.labels, digits=digits)
    root = Path(data)
    if not root.is_dir():
        if not root.exists():
            raise UserError(f"--data {data}: no such file or directory")
        raise UserError(f"--data {data}: expected an image folder or 'digits'")
    found = collect_images([root])
    if not found.paths:
        raise UserError(f"--data {data}: no images (any format Pillow reads) in it or below it")
    rel = [p.relative_to(root) for p in found.paths]
    labelled = all(len(r.parts) >= 2 for r in rel)
    if need_labels and not labelled:
        raise UserError(f"--data {data}: expected images inside class sub-folders (root/<class>/<image>)")
    keys = [str(p) for p in found.paths]
    what = f"{len(keys)} images in {root}"
    if not labelled:
        return ImageSet(f"{what}, unlabelled", keys, None, found.skipped, root)
    index = class_index([r.parts[0] for r in rel], labels, wnids)
    targets = np.asarray([index[r.parts[0]] for r in rel], dtype=np.int64)
    _check_labels(data, targets, num_classes, {v: k for k, v in index.items()})
    return ImageSet(f"{what}, {len(index)} classes", keys, targets, found.skipped, root)
