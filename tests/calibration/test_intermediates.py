"""ONNX Runtime's intermediate models stay in a temporary folder that every exit removes.

Its calibrators and quantize_static write `<name>-inferred.onnx` beside the model path they
get; the artifact folder must never see it, and a failed write (a full disk) is an
operating-system error: exit 74, one line.
"""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import onnx
import pytest

from calibration.__main__ import main
from runtime.app.cli.exits import OS_ERROR as EXIT_OS_ERROR

from .conftest import copy_export

ARGS = ["--data", "digits", "--limit", "16", "--method", "max"]
ARTIFACTS = {"model.onnx", "model.json", "golden.npz", "model.int8.onnx", "model.int8.cpu.onnx", "calibration.json"}


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder tempfile hands out temporary folders in, for the test to inspect."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_intermediates_never_appear_beside_the_model(
    digits_export: Path, tmp_path: Path, temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []
    real = onnx.shape_inference.infer_shapes_path

    def recording(src: str, dst: str = "", *args: object, **kwargs: object) -> None:
        written.append(Path(dst).resolve())
        real(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes_path", recording)
    onnx_path = copy_export(digits_export, tmp_path / "build")
    assert main([str(onnx_path), *ARGS, "--force"]) == 0
    assert written, "ONNX Runtime's shape inference to a file was expected"
    assert all(p.parent != onnx_path.parent.resolve() for p in written), written
    assert {p.name for p in onnx_path.parent.iterdir()} == ARTIFACTS
    assert list(temp_root.iterdir()) == []


def _truncating(real: object) -> object:
    """Shape inference on a full disk: the C++ writer ignores the failed write."""

    def infer(src: str, dst: str = "", *args: object, **kwargs: object) -> None:
        real(src, dst, *args, **kwargs)  # type: ignore[operator]
        data = Path(dst).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])

    return infer


def _no_space(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device", "augmented.onnx")


@pytest.mark.parametrize("fault", ["truncated intermediate", "ENOSPC while saving"])
def test_a_failed_intermediate_write_exits_74_with_one_line_and_leaves_nothing(
    fault: str,
    digits_export: Path,
    tmp_path: Path,
    temp_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if fault == "truncated intermediate":
        monkeypatch.setattr(
            onnx.shape_inference, "infer_shapes_path", _truncating(onnx.shape_inference.infer_shapes_path)
        )
    else:
        monkeypatch.setattr(onnx, "save", _no_space)  # ONNX Runtime saves its augmented model so
    onnx_path = copy_export(digits_export, tmp_path / "build")
    assert main([str(onnx_path), *ARGS]) == EXIT_OS_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == err.strip().splitlines()[-1:]
    assert {p.name for p in onnx_path.parent.iterdir()} == {"model.onnx", "model.json", "golden.npz"}
    assert list(temp_root.iterdir()) == []
