"""`python -m calibration` names the files it wrote after the graph it was given."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from calibration import __main__ as cli
from runtime.core.artifacts import CALIBRATION_NAME, GOLDEN_NAME, MANIFEST_NAME, ONNX_NAME


def test_a_graph_not_named_model_onnx_gets_its_own_int8_name(
    digits_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (MANIFEST_NAME, GOLDEN_NAME):
        shutil.copy(digits_export / name, tmp_path / name)
    foo = tmp_path / "foo.onnx"
    shutil.copy(digits_export / ONNX_NAME, foo)
    args = [str(foo), "--data", "digits", "--limit", "16", "--method", "max"]

    assert cli.main(args) == 0
    out = capsys.readouterr().out
    int8 = tmp_path / "foo.int8.onnx"
    assert int8.is_file() and not (tmp_path / "model.int8.onnx").exists()
    assert f"wrote {int8} and {tmp_path / CALIBRATION_NAME}" in out

    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{int8} is up to date") and "model.int8.onnx" not in out
