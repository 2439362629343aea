"""A read-only output folder ends `export engine` and `export triton` with one line naming
the file, exit 74 (an operating-system error, not bad input), and nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.__main__ import main
from runtime.app.cli.options import EXIT_OS_ERROR
from tests.fakes.fake_tensorrt import copy_model_dir
from tests.runtime.test_os_errors import _check_one_line, _read_only_replace


@pytest.mark.rtx
def test_engine_on_read_only_disk(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = copy_model_dir(digits_export, tmp_path / "m")
    before = sorted(p.name for p in d.iterdir())
    _read_only_replace(monkeypatch, d)
    argv = ["engine", str(d / "model.onnx"), "--flavour", "tensorrt-rtx", "--shapes", "1x3x32x32:1x3x32x32:2x3x32x32"]
    code = main(argv)
    _check_one_line(code, capsys.readouterr().err, "model.fp32.engine")
    assert sorted(p.name for p in d.iterdir()) == before


def test_triton_on_read_only_disk(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    _read_only_replace(monkeypatch, repo)
    code = main(["triton", str(digits_export), "--out", str(repo), "--format", "onnx"])
    _check_one_line(code, capsys.readouterr().err, str(repo / "convmixer_digits"))
    assert EXIT_OS_ERROR == code and list(repo.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
