"""Shared fixtures: tiny models and exports built once per test run.

Tests marked `trt` need TensorRT and a CUDA device, `gpu` a CUDA device with
cuda-python. Where those are missing they are skipped with the reason,
unless CONVMIXER_REQUIRE_GPU=1 (make test-gpu), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cuda_device_count() -> int:
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return 0
    err, count = cudart.cudaGetDeviceCount()
    return int(count) if int(err) == 0 else 0


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
def digits_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """build/convmixer_digits/ with model.onnx, model.json, golden.npz (real digit images)."""
    from runtime.images.datasets import load_digits

    out = tmp_path_factory.mktemp("convmixer_digits")
    samples = tmp_path_factory.mktemp("digit_samples")
    test = load_digits("test")
    for i in range(8):
        test.image(i).save(samples / f"{i:02d}_label{test.labels[i]}.png")
    from export.onnx_export import export_onnx

    export_onnx("convmixer_digits", out_dir=out, golden_images=samples)
    return out


@pytest.fixture(scope="session")
def tiny_random_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init convmixer_256_8 export (CIFAR shape, 10 classes)."""
    from export.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("convmixer_256_8")
    export_onnx("convmixer_256_8", out_dir=out, seed=3)
    return out
