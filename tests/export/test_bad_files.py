"""Files that are not what a step expects end in one line and exit 2, never a traceback:
a corrupt or JSON file where an ONNX model should be, a missing ONNX file, and options the
default flavour cannot honour."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from export.__main__ import main
from tests.fakes.fake_tensorrt import copy_model_dir


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture()
def not_onnx(digits_export: Path, tmp_path: Path) -> dict[str, Path]:
    """Beside a real model.json: random bytes named .onnx, and JSON text named .onnx."""
    d = copy_model_dir(digits_export, tmp_path / "m")
    corrupt = d / "corrupt.onnx"
    corrupt.write_bytes(bytes(range(256)) * 8)
    as_json = d / "json.onnx"
    shutil.copy(d / "model.json", as_json)
    return {"corrupt": corrupt, "json": as_json, "manifest": d / "model.json"}


@pytest.mark.parametrize("which", ["corrupt", "json", "manifest"])
def test_fp16_of_a_file_that_is_not_onnx(
    not_onnx: dict[str, Path], capsys: pytest.CaptureFixture[str], which: str
) -> None:
    assert main(["fp16", str(not_onnx[which])]) == 2
    assert f"{not_onnx[which]}: not an ONNX model (" in _one_error_line(capsys)
    assert not list(not_onnx["corrupt"].parent.glob("*.fp16.*"))


def test_calibration_of_a_file_that_is_not_onnx(not_onnx: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from calibration.__main__ import main as calibrate

    assert calibrate([str(not_onnx["corrupt"]), "--data", "digits"]) == 2
    assert f"{not_onnx['corrupt']}: not an ONNX model (" in _one_error_line(capsys)


@pytest.mark.rtx
@pytest.mark.parametrize("which", ["corrupt", "json"])
def test_engine_of_a_file_that_is_not_onnx(
    not_onnx: dict[str, Path], capsys: pytest.CaptureFixture[str], which: str
) -> None:
    """TensorRT-RTX's parser says so itself: the engine step needs no onnx package for it."""
    argv = ["engine", str(not_onnx[which]), "--flavour", "tensorrt-rtx", "--shapes", "1x3x32x32:1x3x32x32:2x3x32x32"]
    assert main(argv) == 2
    line = _one_error_line(capsys)  # the parser rejects it, or finds nothing in it
    assert "ONNX parser rejected" in line or f"{not_onnx[which]}: not an ONNX model (" in line
    assert not list(not_onnx["corrupt"].parent.glob("*.engine*"))


def test_engine_of_a_missing_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engine", str(tmp_path / "missing.onnx")]) == 2
    assert _one_error_line(capsys) == f"error: {tmp_path / 'missing.onnx'}: no such file"


def test_print_trtexec_follows_the_default_flavour(
    digits_export: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --flavour on a machine whose default is tensorrt-rtx: RTX's rules apply, and RTX has no trtexec."""
    import export.engine

    monkeypatch.setattr(export.engine, "default_flavour", lambda: "tensorrt-rtx")
    assert main(["engine", str(digits_export / "model.onnx"), "--print-trtexec"]) == 2
    assert "tensorrt-rtx ships no trtexec" in _one_error_line(capsys)
    assert capsys.readouterr().out == ""
    assert main(["engine", str(digits_export / "model.onnx"), "--timing-cache", "t.cache", "--print-trtexec"]) == 2
    assert "tensorrt-rtx does not support --timing-cache" in _one_error_line(capsys)


@pytest.mark.parametrize("extra", [[], ["--print-trtexec"]], ids=["build", "print-trtexec"])
def test_engine_refuses_the_cpu_int8_graph_naming_the_tensorrt_one(
    digits_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    d = copy_model_dir(digits_export, tmp_path / "m")
    cpu = d / "model.int8.cpu.onnx"
    shutil.copy(d / "model.onnx", cpu)  # the name decides: a CPU graph never reaches TensorRT
    assert main(["engine", str(cpu), *extra]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {cpu}: ") and line.endswith("build the engine from model.int8.onnx")
    assert not list(d.glob("*.engine*"))
