"""Calibration fixtures: a writable copy of the digits export, and the extreme-sample set.

The extreme set is the issue's finding made reproducible: the 512 digits calibration
images preprocessed, with 8 of them scaled x25 (a few corrupt or mis-normalised samples
in a real calibration folder), saved as .npy. Held-out accuracy is always measured on the
digits test split, which calibration never sees.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from calibration.data import DEFAULT_LIMIT, SELECTION_SEED
from runtime.app.images.datasets import load_digits
from runtime.core.backends.onnxruntime import OnnxRuntimeRunner
from runtime.core.manifest import load_manifest
from runtime.core.preprocess import preprocess

EXTREME_COUNT = 8
EXTREME_SCALE = 25.0


def copy_export(src: Path, dst: Path) -> Path:
    """A writable build folder with model.onnx, model.json, golden.npz (and fp16 when there)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "model.json", "golden.npz", "model.fp16.onnx"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    return dst / "model.onnx"


@pytest.fixture(scope="session")
def digits_fp16(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits export plus model.fp16.onnx, to copy from."""
    from export.fp16 import convert_fp16

    d = tmp_path_factory.mktemp("digits_fp16")
    convert_fp16(copy_export(digits_export, d))
    return d


@pytest.fixture(scope="session")
def digits_arrays(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """clean.npy and extreme.npy: 512 preprocessed digits train images, the second with 8 scaled x25."""
    cfg = load_manifest(digits_export / "model.onnx").preprocessing
    train = load_digits("train")
    order = np.random.default_rng(SELECTION_SEED).permutation(len(train.labels))[:DEFAULT_LIMIT]
    clean = np.stack([preprocess(train.image(int(i)), cfg) for i in order])
    extreme = clean.copy()
    extreme[np.random.default_rng(1).choice(len(clean), EXTREME_COUNT, replace=False)] *= EXTREME_SCALE
    d = tmp_path_factory.mktemp("calibration_sets")
    np.save(d / "clean.npy", clean)
    np.save(d / "extreme.npy", extreme)
    return {"clean": d / "clean.npy", "extreme": d / "extreme.npy"}


@pytest.fixture(scope="session")
def digits_test(digits_export: Path) -> tuple[np.ndarray, np.ndarray]:
    cfg = load_manifest(digits_export / "model.onnx").preprocessing
    test = load_digits("test")
    return np.stack([preprocess(test.image(i), cfg) for i in range(len(test.labels))]), np.asarray(test.labels)


def top1(model_file: Path, data: tuple[np.ndarray, np.ndarray]) -> float:
    """Top-1 accuracy in points on (images, labels) with ONNX Runtime CPU."""
    with OnnxRuntimeRunner(model_file, ["CPUExecutionProvider"]) as runner:
        return float(100.0 * (runner.infer(data[0]).argmax(1) == data[1]).mean())
