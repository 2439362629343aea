"""An ONNX model whose external-data file is missing or cut short: one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tests.calibration.conftest import copy_export
from tests.conftest import run_cli


def _with_external_data(digits_export: Path, folder: Path, fault: str) -> Path:
    onnx_path = copy_export(digits_export, folder)
    model = onnx.load(str(onnx_path))
    onnx.save(model, str(onnx_path), save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    data = folder / "model.onnx.data"
    if fault == "missing":
        data.unlink()
    else:
        data.write_bytes(data.read_bytes()[:100])
    return onnx_path


@pytest.mark.parametrize("fault", ["missing", "truncated"])
@pytest.mark.parametrize("command", [("export", "fp16"), ("calibration",)], ids=["export fp16", "calibration"])
def test_missing_external_data_is_one_line(
    digits_export: Path, tmp_path: Path, fault: str, command: tuple[str, ...]
) -> None:
    onnx_path = _with_external_data(digits_export, tmp_path / "build", fault)
    extra = ["--data", "digits", "--limit", "16"] if command == ("calibration",) else []
    res = run_cli(*command, str(onnx_path), *extra)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "model.onnx.data" in res.stderr.strip().splitlines()[-1]
