"""Folder walking: every file is read, reported as skipped with its reason, or (hidden
entries and sidecar files) passed over by a documented rule; the same for every command."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.datasets import open_image_set
from runtime.app.images.inputs import collect_images
from tests.conftest import run_cli


def _png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def odd_folder(tmp_path: Path) -> Path:
    root = tmp_path / "odd"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "good.png").write_bytes(_png_bytes(0))
    (root / "no_suffix").write_bytes(_png_bytes(1))  # an image without a suffix: read
    (root / "fake.heic").write_bytes(_png_bytes(2))  # really a PNG: read
    (root / "sub" / "UPPER.PNG").write_bytes(_png_bytes(3))
    (root / "real.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))  # HEIC Pillow cannot open
    (root / "blob").write_bytes(b"\x01\x02 not an image")  # no suffix, not an image
    (root / "scan.xyz").write_bytes(b"whatever this is")
    (root / "notes.txt").write_text("a sidecar")  # passed over
    (root / "labels.json").write_text("{}")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: passed over
    (root / "._good.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    (root / ".git" / "x.png").write_bytes(_png_bytes(4))  # inside a hidden folder
    return root


READ = {"good.png", "no_suffix", "fake.heic", "UPPER.PNG"}
SKIPPED = {"real.heic", "blob", "scan.xyz"}


def test_unknown_or_missing_suffixes_are_read_or_reported(odd_folder: Path) -> None:
    found = collect_images([odd_folder])
    assert {p.name for p in found.paths} == READ
    reasons = {Path(s.path).name: s.reason for s in found.skipped}
    assert set(reasons) == SKIPPED
    assert reasons["blob"].startswith("not an image (no suffix")
    assert reasons["real.heic"].startswith("not an image (suffix .heic")
    assert found.count == len(READ) + len(SKIPPED)


def test_named_files_are_always_tried(odd_folder: Path) -> None:
    found = collect_images([odd_folder / "notes.txt", odd_folder / ".DS_Store"])
    assert {p.name for p in found.paths} == {"notes.txt", ".DS_Store"}  # the decoder will say why not


def test_calibration_and_evaluate_walk_folders_alike(odd_folder: Path) -> None:
    from calibration.data import open_source
    from runtime.core.preprocess import Preprocessing

    cfg = Preprocessing(32, 1.0, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    images = open_image_set(str(odd_folder), None)
    assert {Path(k).name for k in images.keys} == READ
    assert {Path(s.path).name for s in images.skipped} == SKIPPED
    src = open_source(str(odd_folder), cfg, None)
    assert {Path(s.key).name for s in src.calibration + src.heldout} == READ
    assert {Path(s.split(": ")[0]).name for s in src.skipped} == SKIPPED


def test_classify_counts_and_outputs_the_unrecognised_files(
    digits_export: Path, odd_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.jsonl"
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(odd_folder), "--output", str(out))
    assert res.returncode == 3, res.stderr
    assert f"classified {len(READ)} of {len(READ) + len(SKIPPED)} images" in res.stderr
    assert all(name in res.stderr for name in SKIPPED)
    text = out.read_text()
    assert all(name in text for name in READ | SKIPPED) and "notes.txt" not in text and ".DS_Store" not in text
