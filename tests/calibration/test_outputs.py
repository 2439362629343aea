"""A --data path that is, or holds, one of calibration's outputs is refused before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration import __main__ as cli
from tests.calibration.conftest import copy_export


@pytest.mark.parametrize("data", ["build", ".", "build/calibration.json", "build/model.int8.onnx"])
def test_data_holding_an_output_is_refused(
    digits_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: str
) -> None:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    for i in range(12):  # images a folder --data would otherwise happily read
        Image.fromarray(np.full((32, 32), 20 * i, np.uint8)).save(tmp_path / "build" / f"{i}.png")
    for name in ("calibration.json", "model.int8.onnx"):
        (tmp_path / "build" / name).write_bytes(b"from an earlier run")
    before = {p.name: p.read_bytes() for p in onnx_path.parent.iterdir()}
    assert cli.main([str(onnx_path), "--data", str(tmp_path / data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --data") and "which this calibration writes" in err and "\n" not in err
    assert {p.name: p.read_bytes() for p in onnx_path.parent.iterdir()} == before
