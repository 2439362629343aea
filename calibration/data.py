"""Calibration data: an image folder, a .npy/.npz of preprocessed tensors, or `digits`.

A source is split deterministically into a calibration part (at most `limit` images)
and a held-out part that calibration never sees, on which calibration.json reports
agreement and accuracy. Folders and digits are read by runtime.app.images.datasets, the
reader `evaluate` uses, through the one decode pipeline: the same files are skipped for
the same reasons, by name. Images are decoded one batch at a time, so memory stays
bounded whatever the size of the set. A sample that cannot be decoded, or whose tensor is
not finite, is skipped and listed, and a replacement is drawn from the rest of the set
(in the same seeded order: the rest of the set, then the held-out part while it keeps a
fifth), so calibration uses `limit` usable images whenever the set has them. Calibration
needs MIN_USABLE good ones in the whole set, drawn from all of the held-out part if need
be (`calibration_batches`).

Samples are what the graph's input takes (runtime.core.manifest.InputSpec): float32 CHW,
normalised, or uint8 HWC for a model exported with `--input uint8`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.app.images.datasets import SPLIT_SEED, ImageSet, open_image_set
from runtime.app.images.transform import ImageTransform
from runtime.core.errors import UserError
from runtime.core.manifest import InputSpec
from runtime.core.preprocess import Preprocessing

from .arrays import ArrayRows, open_array

log = logging.getLogger(__name__)

SELECTION_SEED = 0
DEFAULT_LIMIT = 512
DEFAULT_HELDOUT = 256
MIN_USABLE = 8


class ImageRows:
    """Rows of an ImageSet, decoded through the pipeline into the graph's input."""

    def __init__(self, images: ImageSet, transform: ImageTransform) -> None:
        self.images, self.transform = images, transform

    def read(self, indices: list[int], batch: int) -> Iterator[tuple[np.ndarray, list[int], list[str]]]:
        """(inputs, the indices that made them, "key: reason" of those skipped) per batch."""
        for b in self.images.batches(self.transform, batch, indices):
            yield b.images.copy(), b.index.tolist(), [f"{s.path}: {s.reason}" for s in b.errors]


@dataclass(frozen=True)
class Sample:
    key: str  # a path, "digits:test:17" or "x.npy[3]"
    label: int | None
    index: int  # the row in `rows`
    rows: ImageRows | ArrayRows = field(repr=False, compare=False)


@dataclass
class DataSource:
    description: str
    fingerprint: str
    calibration: list[Sample]
    heldout: list[Sample]
    skipped: list[str] = field(default_factory=list)  # "path: reason", filled while streaming
    reserve: list[Sample] = field(default_factory=list)  # the rest of the set: replacements, in draw order
    limit: int = 0  # the usable images calibration aims for: the calibration part's size (--limit at most)

    def batches(self, samples: list[Sample], batch: int) -> Iterator[tuple[np.ndarray, list[int | None]]]:
        """Preprocessed batches; unreadable images are skipped and recorded in `skipped`."""
        start = 0
        while start < len(samples):
            rows = samples[start].rows
            end = start
            while end < len(samples) and samples[end].rows is rows:
                end += 1
            by_index = {s.index: s for s in samples[start:end]}
            for x, ok, errors in rows.read(list(by_index), batch):
                for error in errors:
                    if error not in self.skipped:  # calibration may read the set twice
                        self.skipped.append(error)
                        log.warning("skipped %s", error)
                if ok:
                    yield x, [by_index[i].label for i in ok]
            start = end

    def calibration_batches(self, batch: int) -> Iterator[tuple[np.ndarray, list[int | None]]]:
        """The calibration part's batches, then replacements for the samples that failed,
        until `limit` were usable: drawn from the reserve, then from the held-out part while
        it keeps a fifth of its samples for the report, and, while fewer than MIN_USABLE
        were usable, from the rest of it. Drawn samples join the calibration part, so a
        second pass reads the same images."""
        used = 0
        for x, labels in self.batches(self.calibration, batch):
            used += len(x)
            yield x, labels
        kept = len(self.heldout) // 5  # the held-out part keeps a fifth for the report, but for the minimum
        for pool, target, floor in (
            (self.reserve, self.limit, 0),
            (self.heldout, self.limit, kept),
            (self.heldout, MIN_USABLE, 0),
        ):
            while used < target and len(pool) > floor:
                take = pool[: min(target - used, len(pool) - floor)]
                del pool[: len(take)]
                self.calibration.extend(take)
                for x, labels in self.batches(take, batch):
                    used += len(x)
                    yield x, labels


def _split(n: int, limit: int, heldout: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibration, held-out, reserve) indices of a set of `n`, in one seeded order."""
    order = np.random.default_rng(SELECTION_SEED).permutation(n)
    if n <= limit:
        # Keep a fifth out of calibration so the report is on unseen images, but never
        # below the minimum calibration needs.
        n_held = min(n // 5 if n > 1 else 0, max(0, n - MIN_USABLE))
        return order[n_held:], order[:n_held], order[:0]
    return order[:limit], order[limit : limit + heldout], order[limit + heldout :]


def _image_folder(images: ImageSet, transform: ImageTransform, limit: int, heldout: int) -> DataSource:
    assert images.root is not None
    rows = ImageRows(images, transform)
    calib_idx, held_idx, reserve_idx = _split(len(images), limit, heldout)

    def sample(i: int) -> Sample:
        return Sample(images.keys[i], None if images.labels is None else int(images.labels[i]), i, rows)

    digest = hashlib.sha256()
    for part, idx in (("calibration", calib_idx), ("held-out", held_idx), ("reserve", reserve_idx)):
        for i in sorted(idx.tolist()):
            path = Path(images.keys[i])
            st = path.stat()
            digest.update(f"{part}\0{path.relative_to(images.root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    unreadable = [f"{s.path}: {s.reason}" for s in images.skipped]  # broken links, loops, closed folders
    return DataSource(
        images.description,
        digest.hexdigest(),
        [sample(int(i)) for i in calib_idx],
        [sample(int(i)) for i in held_idx],
        unreadable,
        [sample(int(i)) for i in reserve_idx],
        len(calib_idx),
    )


def _array_file(
    path: Path, cfg: Preprocessing, spec: InputSpec, limit: int, heldout: int, classes: int | None
) -> DataSource:
    rows = open_array(path, cfg, spec, classes)
    calib_idx, held_idx, reserve_idx = _split(len(rows), limit, heldout)

    def sample(i: int) -> Sample:
        return Sample(f"{path.name}[{i}]", rows.label(i), i, rows)

    digest = hashlib.sha256(f"{path.name}\0{path.stat().st_size}\0{path.stat().st_mtime_ns}".encode())
    return DataSource(
        f"{len(rows)} preprocessed tensors in {path}",
        digest.hexdigest(),
        [sample(int(i)) for i in calib_idx],
        [sample(int(i)) for i in held_idx],
        reserve=[sample(int(i)) for i in reserve_idx],
        limit=len(calib_idx),
    )


def _digits(transform: ImageTransform, limit: int, classes: int | None) -> DataSource:
    train = open_image_set("digits", None, split="train", num_classes=classes)
    test = open_image_set("digits", None, split="test", num_classes=classes)
    train_rows, test_rows = ImageRows(train, transform), ImageRows(test, transform)
    assert train.labels is not None and test.labels is not None
    permuted = np.random.default_rng(SELECTION_SEED).permutation(len(train))
    order, rest = permuted[:limit], permuted[limit:]
    fingerprint = hashlib.sha256(f"sklearn-digits split {SPLIT_SEED} pick {SELECTION_SEED} limit {limit}".encode())
    return DataSource(
        f"scikit-learn digits: {len(order)} train images for calibration, the {len(test)}-image test split held out",
        fingerprint.hexdigest(),
        [Sample(train.keys[i], int(train.labels[i]), int(i), train_rows) for i in order],
        [Sample(test.keys[i], int(test.labels[i]), i, test_rows) for i in range(len(test))],
        reserve=[Sample(train.keys[i], int(train.labels[i]), int(i), train_rows) for i in rest],
        limit=len(order),
    )


def open_source(
    data: str,
    cfg: Preprocessing,
    labels: list[str] | None,
    limit: int = DEFAULT_LIMIT,
    heldout: int = DEFAULT_HELDOUT,
    spec: InputSpec | None = None,
    num_classes: int | None = None,
    wnids: list[str] | None = None,
) -> DataSource:
    """Resolve `--data` to a DataSource with its calibration and held-out parts.

    `spec` (model.json's input block) says what to produce; the default is float32 NCHW.
    Labels must lie in 0..num_classes-1 (default: the number of `labels`, when given)."""
    spec = spec or InputSpec()
    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    classes = num_classes or (len(labels) if labels else None)
    transform = ImageTransform(cfg, spec)
    path = Path(data)
    if data == "digits":
        source = _digits(transform, limit, classes)
    elif path.is_file() and path.suffix.lower() in (".npy", ".npz"):
        source = _array_file(path, cfg, spec, limit, heldout, classes)
    elif path.is_file():
        raise UserError(f"--data {path}: expected an image folder, a .npy/.npz file or 'digits'")
    else:
        images = open_image_set(data, labels, num_classes=classes, wnids=wnids)
        source = _image_folder(images, transform, limit, heldout)
    settings = json.dumps({**cfg.__dict__, "input": spec.dtype}, sort_keys=True, default=list)
    source.fingerprint = hashlib.sha256(f"{source.fingerprint}\0{settings}".encode()).hexdigest()
    return source
