"""Shared fixtures: tiny models and exports built once per test run.

Tests marked `trt` need TensorRT and a CUDA device, `gpu` a CUDA device with
cuda-python. Where those are missing they are skipped with the reason,
unless CONVMIXER_REQUIRE_GPU=1 (make test-gpu), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cuda_device_count() -> int:
    """The runtime's own answer: 0 without cuda-python, a driver or a GPU."""
    from runtime.core.backends.cuda import CudaPython
    from runtime.core.errors import UserError

    try:
        return CudaPython().device_count()
    except UserError:  # cuda-python is not installed
        return 0


def _missing(marker: str) -> str | None:
    if marker in ("gpu", "trt") and _cuda_device_count() == 0:
        return "no CUDA device with cuda-python"
    if marker == "trt":
        try:
            import tensorrt  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return "TensorRT is not installed"
        if not hasattr(tensorrt, "Builder"):  # tensorrt-stubs alone import as a namespace package
            return "TensorRT is not installed (only its type stubs)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    require = os.environ.get("CONVMIXER_REQUIRE_GPU") == "1"
    cache: dict[str, str | None] = {}
    for item in items:
        for marker in ("trt", "gpu"):
            if item.get_closest_marker(marker) is not None:  # not `in item.keywords`: that holds folder names too
                if marker not in cache:
                    cache[marker] = _missing(marker)
                reason = cache[marker]
                if reason and not require:
                    item.add_marker(pytest.mark.skip(reason=f"{marker}: {reason}"))
                break


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m ...` as a user would, from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def digit_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 images of the digits test split as PNGs, named `NN_labelL.png`. Read only."""
    from runtime.app.images.datasets import load_digits

    out = tmp_path_factory.mktemp("digit_images")
    test = load_digits("test")
    for i in range(12):
        test.image(i).save(out / f"{i:02d}_label{test.labels[i]}.png")
    return out


@pytest.fixture(scope="session")
def digits_export(digit_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/convmixer_digits/ with model.onnx, model.json, golden.npz (the first 8 digit_images)."""
    from export.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("convmixer_digits")
    export_onnx("convmixer_digits", out_dir=out, golden_images=digit_images)
    return out


@pytest.fixture(scope="session")
def digits_int8(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits export plus model.fp16.onnx, and model.int8.onnx with calibration.json made by
    `python -m calibration --data digits --limit 256` (entropy). Read only: copy it to change it."""
    from export.fp16 import convert_fp16

    out = tmp_path_factory.mktemp("digits_int8")
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, out / name)
    convert_fp16(out / "model.onnx")
    res = run_cli("calibration", str(out / "model.onnx"), "--data", "digits", "--limit", "256")
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="session")
def digits_uint8_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """convmixer_digits exported with `--input uint8` (uint8 NHWC in). Read only: copy it to write beside it."""
    from export.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("digits_uint8")
    export_onnx("convmixer_digits", out_dir=out, input_dtype="uint8")
    return out


@pytest.fixture(scope="session")
def tiny_random_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init convmixer_256_8 export (CIFAR shape, 10 classes)."""
    from export.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("convmixer_256_8")
    export_onnx("convmixer_256_8", out_dir=out, seed=3)
    return out
