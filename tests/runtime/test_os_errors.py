"""OS errors (read-only or full disk, no permission) end every command in one line, a
non-zero exit, and no file half-written or left behind."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from runtime.app.cli.exits import OS_ERROR as EXIT_OS_ERROR
from tests.conftest import run_cli


def _copy_export(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(src / name, dst / name)
    return dst


def _read_only_replace(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Every rename into `folder` fails as on a read-only file system; elsewhere (scratch
    files in the temp folder) renames work. (Tests run as root here, and root ignores
    permission bits, so chmod cannot make a folder read-only.)"""
    real_replace = os.replace

    def refuse(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse)


def _run_main(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _check_one_line(code: int, err: str, target: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == EXIT_OS_ERROR, err
    assert len(lines) == 1 and target in lines[0] and "Read-only file system" in lines[0], err
    assert "Traceback" not in err


def test_export_onnx_on_read_only_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from export.__main__ import main

    _read_only_replace(monkeypatch, tmp_path / "x")
    code, err = _run_main(main, ["onnx", "--model", "convmixer_digits", "--out", str(tmp_path / "x")], capsys)
    _check_one_line(code, err, str(tmp_path / "x"))
    assert list((tmp_path / "x").iterdir()) == []


def test_export_fp16_on_read_only_disk(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from export.__main__ import main

    folder = _copy_export(digits_export, tmp_path / "m")
    _read_only_replace(monkeypatch, folder)
    code, err = _run_main(main, ["fp16", str(folder / "model.onnx")], capsys)
    _check_one_line(code, err, "model.fp16.onnx")
    assert sorted(p.name for p in folder.iterdir()) == ["golden.npz", "model.json", "model.onnx"]


def test_calibration_on_read_only_disk(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from calibration.__main__ import main

    folder = _copy_export(digits_export, tmp_path / "m")
    _read_only_replace(monkeypatch, folder)
    code, err = _run_main(main, [str(folder / "model.onnx"), "--data", "digits", "--limit", "16", "--method", "max"], capsys)
    _check_one_line(code, err, str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["golden.npz", "model.json", "model.onnx"]


def test_classify_output_on_read_only_disk(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.app.cli.main import main

    Image.new("L", (8, 8), 200).save(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    _read_only_replace(monkeypatch, tmp_path / "out")
    argv = ["classify", str(digits_export / "model.onnx"), str(tmp_path / "a.png"), "--workers", "0"]
    code, err = _run_main(main, [*argv, "--output", str(tmp_path / "out" / "p.jsonl")], capsys)
    _check_one_line(code, err, "p.jsonl")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_file_where_a_folder_is_expected(digits_export: Path, tmp_path: Path) -> None:
    """A real OS error, end to end in a subprocess: the output folder cannot be created."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    Image.new("L", (8, 8), 200).save(tmp_path / "a.png")
    for args in (
        ("export", "onnx", "--model", "convmixer_digits", "--out", str(blocker / "x")),
        (
            "runtime",
            "classify",
            str(digits_export / "model.onnx"),
            str(tmp_path / "a.png"),
            "--workers",
            "0",
            "--output",
            str(blocker / "p.jsonl"),
        ),
    ):
        res = run_cli(*args)
        assert res.returncode == EXIT_OS_ERROR, res.stderr
        assert "Traceback" not in res.stderr and str(blocker) in res.stderr.strip().splitlines()[-1]
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_folder_for_a_normal_user(tmp_path: Path) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        res = run_cli("export", "onnx", "--model", "convmixer_digits", "--out", str(out))
    finally:
        out.chmod(0o755)
    assert res.returncode == EXIT_OS_ERROR and "Permission denied" in res.stderr and "Traceback" not in res.stderr
    assert list(out.iterdir()) == []


def test_a_temporary_file_that_cannot_be_made_is_reported_as_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from runtime.core.atomic import write_bytes_atomic

    target = tmp_path / "out.bin"
    real_open = os.open

    def no_space(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if Path(path).name.startswith(".out.bin."):  # the temporary file, as os.open reports it
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_space)
    with pytest.raises(OSError) as raised:
        write_bytes_atomic(target, b"x")
    assert raised.value.filename == str(target) and ".tmp" not in str(raised.value)
    assert os.strerror(errno.ENOSPC) in str(raised.value)
