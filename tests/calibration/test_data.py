"""Calibration sources: folders with odd images, arrays, digits; deterministic and fingerprinted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration.data import MIN_USABLE, open_source
from runtime.errors import UserError
from runtime.images.preprocess import Preprocessing

CFG = Preprocessing(32, 1.0, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def make_folder(root: Path, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for label in ("3", "7"):
        d = root / label
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def test_folder_with_class_subfolders_is_labelled_and_split(tmp_path: Path) -> None:
    src = open_source(str(make_folder(tmp_path)), CFG, [str(i) for i in range(10)], limit=8)
    assert len(src.calibration) == 8 and len(src.heldout) == 4
    assert {s.label for s in src.calibration + src.heldout} == {3, 7}
    assert not {s.key for s in src.calibration} & {s.key for s in src.heldout}
    x, labels = next(src.batches(src.calibration, 4))
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32


def test_small_sets_keep_a_fifth_held_out(tmp_path: Path) -> None:
    src = open_source(str(make_folder(tmp_path)), CFG, None, limit=512)
    assert (len(src.calibration), len(src.heldout)) == (10, 2)


def test_selection_is_deterministic_and_fingerprint_tracks_files(tmp_path: Path) -> None:
    root = make_folder(tmp_path)
    a = open_source(str(root), CFG, None, limit=8)
    b = open_source(str(root), CFG, None, limit=8)
    assert [s.key for s in a.calibration] == [s.key for s in b.calibration]
    assert a.fingerprint == b.fingerprint
    assert open_source(str(root), CFG, None, limit=7).fingerprint != a.fingerprint
    victim = Path(a.calibration[0].key)
    Image.new("RGB", (40, 30), "white").save(victim)
    os.utime(victim, ns=(1, 1))
    assert open_source(str(root), CFG, None, limit=8).fingerprint != a.fingerprint


def test_odd_images_are_converted_and_broken_ones_skipped(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("L").save(d / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(d / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(rgb).convert("P").save(d / "palette.png")
    Image.fromarray((rng.integers(0, 65535, (20, 20))).astype(np.uint16)).save(d / "sixteen.png")
    Image.fromarray(rgb).save(d / "ok.bmp")
    Image.fromarray(rgb).save(d / "ok.webp")
    good = (d / "ok.bmp").read_bytes()
    (d / "truncated.png").write_bytes((d / "gray.png").read_bytes()[:60])
    (d / "not_an_image.jpg").write_bytes(b"hello")
    (d / "empty.png").write_bytes(b"")
    assert good
    src = open_source(str(d), CFG, None, limit=100)
    batches = list(src.batches(src.calibration + src.heldout, 64))
    assert sum(len(x) for x, _ in batches) == 7
    assert len(src.skipped) == 3 and any("truncated.png" in s for s in src.skipped)
    assert all(np.isfinite(x).all() for x, _ in batches)


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    from runtime.images.preprocess import open_image

    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(tmp_path / "mid.png")
    arr = np.asarray(open_image(tmp_path / "mid.png"))
    assert arr.shape == (8, 8, 3) and 126 <= arr.mean() <= 129


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent", "no such file or directory"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no images"),
        (lambda p: (p / "x.txt").write_text("x") and p / "x.txt", "expected an image folder"),
        (lambda p: np.save(p / "bad.npy", np.zeros((4, 32, 32))) or p / "bad.npy", "expected preprocessed"),
    ],
)
def test_bad_sources_fail_clearly(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match=message):
        open_source(str(make(tmp_path)), CFG, None)


def test_npy_source_is_memory_mapped(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).standard_normal((20, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "pre.npy", arr)
    src = open_source(str(tmp_path / "pre.npy"), CFG, None, limit=10)
    x, _ = next(src.batches(src.calibration, 10))
    assert len(src.calibration) == 10 and len(src.heldout) == 10
    assert any(np.array_equal(x[0], row) for row in arr)


def test_digits_source_calibrates_on_train_and_holds_out_test() -> None:
    src = open_source("digits", CFG, None, limit=64)
    assert len(src.calibration) == 64 and len(src.heldout) == 359
    assert all(s.key.startswith("digits:train") for s in src.calibration)
    assert all(s.key.startswith("digits:test") for s in src.heldout)
    assert MIN_USABLE <= 64


def test_uint8_input_models_get_uint8_hwc_crops(tmp_path: Path) -> None:
    from runtime.manifest import InputSpec

    spec = InputSpec("uint8")
    for data in ("digits", str(make_folder(tmp_path / "f"))):
        src = open_source(data, CFG, [str(i) for i in range(10)], limit=8, spec=spec)
        x, _ = next(src.batches(src.calibration, 4))
        assert x.shape == (4, 32, 32, 3) and x.dtype == np.uint8 and x.max() > 0
        floats = open_source(data, CFG, [str(i) for i in range(10)], limit=8)
        assert floats.fingerprint != src.fingerprint  # a uint8 calibration is a different one
    np.save(tmp_path / "f32.npy", np.zeros((4, 3, 32, 32), np.float32))
    with pytest.raises(UserError, match=r"this model takes uint8 \[N, H, W, 3\]"):
        open_source(str(tmp_path / "f32.npy"), CFG, None, spec=spec)
