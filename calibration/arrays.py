"""Preprocessed calibration tensors from a .npy (memory-mapped) or .npz file, checked
before any work: the layout, dtype and size the model takes, and whole labels in range.

An .npz is read whole, so the sizes its .npy headers declare are checked against the
memory budget (runtime.core.memory) before anything is decompressed.

A float model takes normalised float tensors: an integer array, or a float one holding
raw 0..255 pixel values, would be calibrated on the wrong range without a word, so both
are refused. Rows whose values are not finite are skipped, each with its reason.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from runtime.core.errors import UserError
from runtime.core.manifest import InputSpec
from runtime.core.memory import check_host_memory, declared_bytes, npz_declared
from runtime.core.preprocess import Preprocessing

RAW_PIXEL_PROBE = 16  # rows looked at to tell raw 0..255 pixels from normalised tensors


class ArrayRows:
    """Rows of a checked [N, ...] array, and their labels (None when the file has none)."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None, dtype: type) -> None:
        self.name, self.images, self.labels, self.dtype = name, images, labels, dtype

    def __len__(self) -> int:
        return len(self.images)

    def label(self, i: int) -> int | None:
        return None if self.labels is None else int(self.labels[i])

    def read(self, indices: list[int], batch: int) -> Iterator[tuple[np.ndarray, list[int], list[str]]]:
        """(inputs, the indices that made them, "key: reason" of those skipped) per batch."""
        for start in range(0, len(indices), batch):
            chunk = indices[start : start + batch]
            x: np.ndarray = np.asarray(self.images[chunk], dtype=self.dtype)  # one read of the mapped rows
            finite = np.isfinite(x.reshape(len(chunk), -1)).all(axis=1)
            ok = [i for i, good in zip(chunk, finite, strict=True) if good]
            errors = [f"{self.name}[{i}]: tensor is not finite (NaN or inf)" for i in chunk if i not in ok]
            yield x[finite], ok, errors


def _load(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r"), None  # memory-mapped: read batch by batch
        declared = npz_declared(path)  # np.load reads a member whole: its size is checked first
        main = "images" if "images" in declared else next((k for k in declared if k != "labels"), "")
        _check_declared(path, {k: v for k, v in declared.items() if k in (main, "labels")})
        with np.load(path) as npz:
            arrays = [k for k in npz.files if k != "labels"]
            if "images" not in npz.files and not arrays:
                raise UserError(f"--data {path}: holds no images array (only {', '.join(npz.files) or 'nothing'})")
            key = "images" if "images" in npz.files else arrays[0]
            return npz[key], (npz["labels"] if "labels" in npz.files else None)
    except PermissionError:
        raise  # the operating system said no: exit 74, not "unreadable"
    except (OSError, ValueError, IndexError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"--data {path}: not a readable {path.suffix} file ({exc})") from None


def _check_declared(path: Path, declared: dict[str, tuple[tuple[int, ...], np.dtype[np.generic]]]) -> None:
    """Refuse an .npz whose arrays, as their headers declare them, the memory budget cannot hold."""
    total = sum(declared_bytes(shape, dtype) for shape, dtype in declared.values())
    shapes = ", ".join(f"{k} {'x'.join(map(str, shape))} {dtype}" for k, (shape, dtype) in declared.items())
    check_host_memory(
        total, f"--data {path} ({shapes})", "an .npz is read whole: save the images as an .npy, which is read in batches"
    )


def _check_images(path: Path, images: np.ndarray, cfg: Preprocessing, spec: InputSpec) -> None:
    size = cfg.input_size
    want = spec.shape(0, size, size)[1:]
    if spec.is_uint8 and (images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8):
        raise UserError(
            f"--data {path}: {images.dtype} array of shape {images.shape} | this model takes uint8 "
            f"[N, H, W, 3] (e.g. [N, {size}, {size}, 3])"
        )
    if not spec.is_uint8 and (images.ndim != 4 or images.shape[1] != 3):
        raise UserError(
            f"--data {path}: array of shape {images.shape} | expected preprocessed [N, 3, H, W] (e.g. [N, 3, {size}, {size}])"
        )
    if tuple(images.shape[1:]) != want:
        raise UserError(
            f"--data {path}: array of shape {images.shape} | this model takes {size}x{size} crops: [N, {', '.join(map(str, want))}]"
        )
    if spec.is_uint8:
        return
    if images.dtype.kind != "f":
        raise UserError(
            f"--data {path}: {images.dtype} array | this model takes normalised float tensors (preprocess the "
            "images first), or give the image folder itself; a uint8 model is exported with --input uint8"
        )
    probe = np.asarray(images[:RAW_PIXEL_PROBE], dtype=np.float64)
    if (
        probe.size
        and np.isfinite(probe).all()
        and probe.min() >= 0
        and probe.max() > 1
        and (probe == np.round(probe)).all()
    ):
        raise UserError(
            f"--data {path}: the values are whole numbers from {probe.min():g} to {probe.max():g}: raw pixels, "
            "not normalised tensors | normalise them as model.json's preprocessing says, or give the image folder"
        )


def _check_labels(path: Path, labels: np.ndarray, n: int, classes: int | None) -> np.ndarray:
    if labels.shape != (n,):
        raise UserError(f"--data {path}: 'labels' has shape {labels.shape} | expected one per image: [{n}]")
    if labels.dtype.kind not in "iuf" or (labels.dtype.kind == "f" and not np.isfinite(labels).all()):
        raise UserError(f"--data {path}: 'labels' must be class numbers; got {labels.dtype} values such as NaN")
    if labels.dtype.kind == "f" and not (labels == np.round(labels)).all():
        raise UserError(f"--data {path}: 'labels' must be whole class numbers; got fractions")
    whole = labels.astype(np.int64)
    top = classes if classes else None
    bad = whole[(whole < 0) | (whole >= top)] if top else whole[whole < 0]
    if len(bad):
        limit = f"the model has {top} classes (0..{top - 1})" if top else "labels start at 0"
        raise UserError(f"--data {path}: label {int(bad[0])} in 'labels', but {limit}")
    return whole


def open_array(path: Path, cfg: Preprocessing, spec: InputSpec, classes: int | None) -> ArrayRows:
    """The checked tensors of `path`, refusing with one line what the model cannot take."""
    images, labels = _load(path)
    _check_images(path, images, cfg, spec)
    checked = None if labels is None else _check_labels(path, np.asarray(labels), len(images), classes)
    return ArrayRows(path.name, images, checked, np.uint8 if spec.is_uint8 else np.float32)
