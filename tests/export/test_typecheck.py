"""mypy really checks the TensorRT code against tensorrt-stubs (a misspelt call fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BAD = """
import tensorrt as trt

def build(logger: trt.ILogger) -> None:
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    config = builder.create_builder_config()
    builder.build_serialised_network(network, config)
    profile = builder.create_optimization_profile()
    profile.set_shape("images", (1, 3, 224, 224), (1, 3, 224, 224), (1, 3, 224, 224))
"""


def test_mypy_catches_misspelt_tensorrt_calls_and_tuples_for_dims(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    stubs = subprocess.run(
        [sys.executable, "-c", "import tensorrt, sys; print(hasattr(tensorrt, '__path__'))"],
        capture_output=True,
        text=True,
    )
    if stubs.returncode != 0:
        pytest.skip("tensorrt-stubs not installed (tools/install-tensorrt-stubs.sh)")
    (tmp_path / "bad_trt.py").write_text(BAD)
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(tmp_path / "bad_trt.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1, res.stdout
    assert '"Builder" has no attribute "build_serialised_network"' in res.stdout
    assert 'incompatible type "tuple[int, int, int, int]"; expected "Dims"' in res.stdout
