"""The one-way import rule: what ships to a Jetson never pulls in torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "module",
    [
        "runtime",
        "runtime.__main__",
        "runtime.backends.tensorrt",
        "runtime.backends.onnxruntime",
        "runtime.backends.cuda",
        "runtime.classify",
        "runtime.bench",
        "runtime.evaluate",
    ],
)
def test_runtime_imports_without_torch(module: str) -> None:
    code = f"import sys, {module}; bad = [m for m in ('torch', 'convmixer', 'export', 'calibration') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
