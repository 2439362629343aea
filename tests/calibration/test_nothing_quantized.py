"""Patterns that leave no layer to quantize are refused: an "INT8" graph needs an INT8 layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from calibration import __main__ as cli
from tests.calibration.conftest import copy_export


@pytest.mark.parametrize(
    "patterns",
    [
        ["--exclude", "*"],
        ["--keep-fp32", "*"],
        ["--exclude", "Conv", "--keep-fp32", "*"],
    ],
    ids=["exclude all", "keep-fp32 all", "both together"],
)
def test_patterns_that_leave_nothing_quantized_are_refused(
    digits_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], patterns: list[str]
) -> None:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    assert cli.main([str(onnx_path), "--data", "digits", "--limit", "16", *patterns]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "no layer would be INT8" in err
    assert not (onnx_path.parent / "model.int8.onnx").exists()
