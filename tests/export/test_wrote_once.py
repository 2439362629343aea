"""Each written file is announced once: the command line prints it, the log does not repeat it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.calibration.conftest import copy_export
from tests.conftest import ROOT


@pytest.mark.parametrize("command", ["fp16", "triton"])
def test_wrote_is_said_once_at_info(digits_export: Path, tmp_path: Path, command: str) -> None:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    args = [str(onnx_path)] if command == "fp16" else [str(onnx_path.parent), "--out", str(tmp_path / "repo")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "INFO"}
    res = subprocess.run(
        [sys.executable, "-m", "export", command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr
    said = [line for line in (res.stdout + res.stderr).splitlines() if "wrote " in line]
    assert len(said) == 1, said
