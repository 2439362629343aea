"""Calibration data: an image folder, a .npy/.npz of preprocessed tensors, or `digits`.

A source is split deterministically into a calibration part (at most `limit` images)
and a held-out part that calibration never sees, on which calibration.json reports
agreement and accuracy. Images are decoded lazily, one batch at a time, so memory stays
bounded whatever the size of the set. A sample that cannot be decoded, or whose tensor
is not finite, is skipped and listed; calibration then needs MIN_USABLE good ones.

Samples are what the graph's input takes (runtime.manifest.InputSpec): float32 CHW,
normalised, or uint8 HWC for a model exported with `--input uint8`. `image_input` is
the one place that turns a decoded image into that.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from runtime.errors import UserError
from runtime.images.datasets import class_index
from runtime.images.inputs import collect_images
from runtime.images.pipeline import ImageTransform
from runtime.images.preprocess import ImageError, Preprocessing
from runtime.manifest import InputSpec

log = logging.getLogger(__name__)

SELECTION_SEED = 0
DEFAULT_LIMIT = 512
DEFAULT_HELDOUT = 256
MIN_USABLE = 8


@dataclass(frozen=True)
class Sample:
    key: str  # a path, or "digits:test:17"
    label: int | None
    load: Callable[[], np.ndarray]  # -> the graph's input for one image, may raise ImageError


@dataclass
class DataSource:
    description: str
    fingerprint: str
    calibration: list[Sample]
    heldout: list[Sample]
    skipped: list[str] = field(default_factory=list)  # "path: reason", filled while streaming

    def batches(self, samples: list[Sample], batch: int) -> Iterator[tuple[np.ndarray, list[int | None]]]:
        """Preprocessed batches; unreadable images are skipped and recorded in `skipped`."""
        xs: list[np.ndarray] = []
        labels: list[int | None] = []
        for sample in samples:
            try:
                x = sample.load()
                if x.dtype.kind == "f" and not np.isfinite(x).all():
                    raise ImageError(f"{sample.key}: tensor is not finite (NaN or inf)")
            except ImageError as exc:
                if str(exc) not in self.skipped:  # calibration may read the set twice
                    self.skipped.append(str(exc))
                    log.warning("skipped %s", exc)
                continue
            xs.append(x)
            labels.append(sample.label)
            if len(xs) == batch:
                yield np.stack(xs), labels
                xs, labels = [], []
        if xs:
            yield np.stack(xs), labels


def image_input(img: Image.Image, cfg: Preprocessing, spec: InputSpec) -> np.ndarray:
    """A decoded image -> what the graph takes (float32 CHW normalised, or uint8 HWC), exactly
    as classify and evaluate build it: runtime.images.pipeline.ImageTransform is the one definition."""
    return ImageTransform(cfg, spec).from_image(img)


def decode_file(path: Path, cfg: Preprocessing, spec: InputSpec) -> np.ndarray:
    """One image file -> the graph's input; raises ImageError for a file that cannot be decoded."""
    return ImageTransform(cfg, spec).from_path(path)


def _split(n: int, limit: int, heldout: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(SELECTION_SEED).permutation(n)
    if n <= limit:
        # Keep a fifth out of calibration so the report is on unseen images.
        n_held = max(1, n // 5) if n > 1 else 0
        return order[n_held:], order[:n_held]
    return order[:limit], order[limit : limit + heldout]


def _image_folder(
    root: Path, cfg: Preprocessing, spec: InputSpec, labels: list[str] | None, limit: int, heldout: int
) -> DataSource:
    inputs = collect_images([root])
    paths = inputs.paths
    if not paths:
        raise UserError(f"--data {root}: no images (any format Pillow reads) in it or below it")
    rel = [p.relative_to(root) for p in paths]
    labelled = all(len(r.parts) >= 2 for r in rel)
    index = class_index([r.parts[0] for r in rel], labels) if labelled else {}
    calib_idx, held_idx = _split(len(paths), limit, heldout)

    def sample(i: int) -> Sample:
        p = paths[i]
        return Sample(str(p), index.get(rel[i].parts[0]) if labelled else None, lambda: decode_file(p, cfg, spec))

    digest = hashlib.sha256()
    for part, idx in (("calibration", calib_idx), ("held-out", held_idx)):
        for i in sorted(idx.tolist()):
            st = paths[i].stat()
            digest.update(f"{part}\0{rel[i]}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    what = f"{len(paths)} images in {root}" + (f", {len(index)} classes" if labelled else ", unlabelled")
    unreadable = [f"{s.path}: {s.reason}" for s in inputs.skipped]  # broken links, loops, closed folders
    return DataSource(
        what, digest.hexdigest(), [sample(i) for i in calib_idx], [sample(i) for i in held_idx], unreadable
    )


def _array_file(path: Path, cfg: Preprocessing, spec: InputSpec, limit: int, heldout: int) -> DataSource:
    labels_arr: np.ndarray | None = None
    try:
        if path.suffix == ".npy":
            images = np.load(path, mmap_mode="r")  # memory-mapped: read batch by batch
        else:
            with np.load(path) as npz:
                key = "images" if "images" in npz.files else npz.files[0]
                images = npz[key]
                labels_arr = npz["labels"] if "labels" in npz.files else None
    except (OSError, ValueError, IndexError) as exc:
        raise UserError(f"--data {path}: not a readable {path.suffix} file ({exc})") from None
    size = cfg.input_size
    if spec.is_uint8 and (images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8):
        raise UserError(
            f"--data {path}: {images.dtype} array of shape {images.shape} | this model takes uint8 "
            f"[N, H, W, 3] (e.g. [N, {size}, {size}, 3])"
        )
    if not spec.is_uint8 and (images.ndim != 4 or images.shape[1] != 3):
        raise UserError(
            f"--data {path}: array of shape {images.shape} | expected preprocessed [N, 3, H, W] (e.g. [N, 3, {size}, {size}])"
        )
    dtype = np.uint8 if spec.is_uint8 else np.float32
    calib_idx, held_idx = _split(len(images), limit, heldout)

    def sample(i: int) -> Sample:
        label = int(labels_arr[i]) if labels_arr is not None else None
        return Sample(f"{path.name}[{i}]", label, lambda: np.asarray(images[i], dtype=dtype))

    digest = hashlib.sha256(f"{path.name}\0{path.stat().st_size}\0{path.stat().st_mtime_ns}".encode())
    return DataSource(
        f"{len(images)} preprocessed tensors in {path}",
        digest.hexdigest(),
        [sample(i) for i in calib_idx],
        [sample(i) for i in held_idx],
    )


def _digits(cfg: Preprocessing, spec: InputSpec, limit: int) -> DataSource:
    from runtime.images.datasets import SPLIT_SEED, load_digits

    train, test = load_digits("train"), load_digits("test")
    order = np.random.default_rng(SELECTION_SEED).permutation(len(train.labels))[:limit]

    def sample(data, split: str, i: int) -> Sample:  # type: ignore[no-untyped-def]
        return Sample(f"digits:{split}:{i}", int(data.labels[i]), lambda: image_input(data.image(i), cfg, spec))

    fingerprint = hashlib.sha256(f"sklearn-digits split {SPLIT_SEED} pick {SELECTION_SEED} limit {limit}".encode())
    return DataSource(
        f"scikit-learn digits: {len(order)} train images for calibration, the {len(test.labels)}-image test split held out",
        fingerprint.hexdigest(),
        [sample(train, "train", int(i)) for i in order],
        [sample(test, "test", i) for i in range(len(test.labels))],
    )


def open_source(
    data: str,
    cfg: Preprocessing,
    labels: list[str] | None,
    limit: int = DEFAULT_LIMIT,
    heldout: int = DEFAULT_HELDOUT,
    spec: InputSpec | None = None,
) -> DataSource:
    """Resolve `--data` to a DataSource with its calibration and held-out parts.

    `spec` (model.json's input block) says what to produce; the default is float32 NCHW."""
    spec = spec or InputSpec()
    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    if data == "digits":
        source = _digits(cfg, spec, limit)
    else:
        path = Path(data)
        if path.is_dir():
            source = _image_folder(path, cfg, spec, labels, limit, heldout)
        elif path.is_file() and path.suffix in (".npy", ".npz"):
            source = _array_file(path, cfg, spec, limit, heldout)
        elif path.exists():
            raise UserError(f"--data {path}: expected an image folder, a .npy/.npz file or 'digits'")
        else:
            raise UserError(f"--data {path}: no such file or directory")
    settings = json.dumps({**cfg.__dict__, "input": spec.dtype}, sort_keys=True, default=list)
    source.fingerprint = hashlib.sha256(f"{source.fingerprint}\0{settings}".encode()).hexdigest()
    return source
