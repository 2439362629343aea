"""Bad options and unusable data end in one line and a documented exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration import __main__ as cli
from tests.calibration.conftest import copy_export


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-drop", "-0.5"], "--max-drop must be between 0 and 100"),
        (["--max-drop", "100.5"], "--max-drop must be between 0 and 100"),
        (["--method", "percentile", "--percentile", "0"], "--percentile must be in (0, 100]"),
        (["--method", "percentile", "--percentile", "100.01"], "--percentile must be in (0, 100]"),
        (["--keep-fp32", "NoSuchOp"], "--keep-fp32 'NoSuchOp' matches no node"),
        (["--exclude", "nothing_*"], "--exclude 'nothing_*' matches no node"),
        (["--best-effort"], "--best-effort only applies with --max-drop"),
    ],
)
def test_bad_options_are_one_line_exit_2(digits_export: Path, capsys, extra: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    assert cli.main([str(digits_export / "model.onnx"), "--data", "digits", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and err.startswith("error: ")


def _corrupt_folder(root: Path) -> Path:
    root.mkdir()
    for i in range(12):
        (root / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(i + 3)))
    return root


def _nan_array(path: Path) -> Path:
    x = np.zeros((20, 3, 32, 32), np.float32)
    x[:, 0, 0, 0] = np.nan
    x[::2, 1, 1, 1] = np.inf
    np.save(path, x)
    return path


@pytest.mark.parametrize("make", [_corrupt_folder, _nan_array], ids=["corrupt-files", "not-finite"])
def test_no_usable_image_says_how_many_are_needed(digits_export: Path, tmp_path: Path, capsys, make) -> None:  # type: ignore[no-untyped-def]
    onnx_path = copy_export(digits_export, tmp_path / "m")
    data = make(tmp_path / ("imgs" if make is _corrupt_folder else "x.npy"))
    for method in ("entropy", "max"):
        assert cli.main([str(onnx_path), "--data", str(data), "--method", method]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "need at least 8 usable images" in err
        assert "No data is collected" not in err
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == ["golden.npz", "model.json", "model.onnx"]


def _upper_case_npy(path: Path) -> Path:
    with path.open("wb") as f:  # np.save would add ".npy" to a name that ends ".NPY"
        np.save(f, np.zeros((20, 3, 32, 32), np.uint8))
    return path


def _labelled(path: Path, labels: np.ndarray) -> Path:
    np.savez(path, images=np.zeros((20, 3, 32, 32), np.float32), labels=labels)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _labelled(p / "few.npz", np.zeros(5, np.int64)), "expected one per image"),
        (lambda p: _labelled(p / "nan.npz", np.full(20, np.nan)), "'labels' must be class numbers"),
        (lambda p: _labelled(p / "high.npz", np.full(20, 10)), "but the model has 10 classes"),
        (lambda p: np.save(p / "tiny.npy", np.zeros((20, 3, 1, 1), np.float32)) or p / "tiny.npy", "32x32 crops"),
        (lambda p: np.save(p / "u8.npy", np.zeros((20, 3, 32, 32), np.uint8)) or p / "u8.npy", "normalised float"),
        (lambda p: np.savez(p / "labels-only.npz", labels=np.zeros(20)) or p / "labels-only.npz", "no images array"),
        (lambda p: _upper_case_npy(p / "U8.NPY"), "normalised float"),
    ],
    ids=["few-labels", "nan-labels", "label-out-of-range", "1x1", "uint8-for-float-model", "labels-only", "upper-case"],
)
def test_unusable_arrays_are_one_line_exit_2(digits_export: Path, tmp_path: Path, capsys, make, message: str) -> None:  # type: ignore[no-untyped-def]
    onnx_path = copy_export(digits_export, tmp_path / "m")
    assert cli.main([str(onnx_path), "--data", str(make(tmp_path)), "--method", "max"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and err.startswith("error: ")
    assert not (onnx_path.parent / "model.int8.onnx").exists()


def test_exactly_eight_good_images_calibrate(digits_export: Path, tmp_path: Path) -> None:
    from runtime.app.images.datasets import load_digits

    onnx_path = copy_export(digits_export, tmp_path / "m")
    folder = tmp_path / "eight"
    folder.mkdir()
    for i in range(8):
        load_digits("train").image(i).save(folder / f"{i}.png")
    assert cli.main([str(onnx_path), "--data", str(folder), "--method", "max"]) == 0
    assert (onnx_path.parent / "model.int8.onnx").is_file()


def _declared_npz(path: Path, shape: tuple[int, ...], data: bytes = bytes(64)) -> Path:
    """An .npz whose images.npy header declares `shape` of float32, followed by only `data`."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", header.getvalue() + data)
    return path


def test_an_npz_declaring_more_than_memory_is_refused_unread(digits_export: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    onnx_path = copy_export(digits_export, tmp_path / "m")
    data = _declared_npz(tmp_path / "huge.npz", (1 << 32, 3, 32, 32))  # 48 TiB declared in 300 bytes
    assert cli.main([str(onnx_path), "--data", str(data), "--method", "max"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: --data {data} (images 4294967296x3x32x32 float32) needs ")
    assert "GiB, over half of this machine's" in err and "save the images as an .npy" in err


def test_the_npz_budget_is_the_batch_budget(digits_export: Path, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """6 MiB of real zeros (a few KB compressed) on a machine of 4 MiB: refused before np.load reads them."""
    from runtime.core import memory as memory_budget

    onnx_path = copy_export(digits_export, tmp_path / "m")
    data = tmp_path / "zeros.npz"
    np.savez_compressed(data, images=np.zeros((512, 3, 32, 32), np.float32), labels=np.zeros(512, np.int64))
    assert data.stat().st_size < 100_000
    monkeypatch.setattr(memory_budget, "physical_memory", lambda: 4 << 20)
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load ran before the budget check"))
    assert cli.main([str(onnx_path), "--data", str(data), "--method", "max"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --data {data} (images 512x3x32x32 float32, labels 512 int64) needs 6.0 MiB, over half of this "
        "machine's 4.0 MiB of memory; an .npz is read whole: save the images as an .npy, which is read in batches"
    )


def test_limit_counts_usable_images_over_half_broken_data(digits_export: Path, tmp_path: Path) -> None:
    import json

    from runtime.app.images.datasets import load_digits

    onnx_path = copy_export(digits_export, tmp_path / "m")
    folder = tmp_path / "half"
    folder.mkdir()
    train = load_digits("train")
    for i in range(100):
        train.image(i).save(folder / f"{i:03d}.png")
        (folder / f"{i:03d}_broken.png").write_bytes(b"")
    assert cli.main([str(onnx_path), "--data", str(folder), "--limit", "64", "--method", "max"]) == 0
    report = json.loads((onnx_path.parent / "calibration.json").read_text())
    assert report["images_used"] == 64


def test_an_npz_with_a_damaged_compressed_member_is_one_line(digits_export: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    onnx_path = copy_export(digits_export, tmp_path / "m")
    data = tmp_path / "damaged.npz"
    np.savez_compressed(data, images=np.random.default_rng(0).standard_normal((20, 3, 32, 32), np.float32))
    raw = bytearray(data.read_bytes())
    name_len, extra_len = int.from_bytes(raw[26:28], "little"), int.from_bytes(raw[28:30], "little")
    start = 30 + name_len + extra_len  # the member's deflate stream, after its local header
    raw[start : start + 4] = b"\xff" * 4  # an invalid block type: zlib.error, not BadZipFile
    data.write_bytes(bytes(raw))
    assert cli.main([str(onnx_path), "--data", str(data), "--method", "max"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: --data {data}: not a readable .npz file (")
