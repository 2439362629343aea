"""Calibration sources: folders with odd images, arrays, digits; deterministic and fingerprinted."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibration.data import MIN_USABLE, open_source
from runtime.core.errors import UserError
from runtime.core.preprocess import Preprocessing

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
    from runtime.core.preprocess import open_image

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
    from runtime.core.manifest import InputSpec

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


def test_folder_images_are_decoded_by_the_pipeline_with_its_error_handling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import struct

    from runtime.core import preprocess

    root = make_folder(tmp_path)
    real = preprocess.open_image

    def pillow_bug(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path).name == "2.png":  # what some Pillow decoders raise on malformed files
            raise struct.error("unpack requires a buffer of 4 bytes")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(preprocess, "open_image", pillow_bug)
    src = open_source(str(root), CFG, None, limit=100)
    batches = list(src.batches(src.calibration + src.heldout, 64))
    assert sum(len(x) for x, _ in batches) == 10
    assert sorted(src.skipped) == sorted(
        f"{root / c / '2.png'}: cannot decode (error: unpack requires a buffer of 4 bytes)" for c in ("3", "7")
    )


def _npz(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    np.savez(path, images=images, labels=labels)
    return path


GOOD = np.random.default_rng(0).standard_normal((20, 3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: _npz(p / "few.npz", GOOD, np.zeros(5, np.int64)),
            r"'labels' has shape \(5,\) \| expected one per image: \[20\]",
        ),
        (lambda p: _npz(p / "many.npz", GOOD, np.zeros((20, 2), np.int64)), r"'labels' has shape \(20, 2\)"),
        (lambda p: _npz(p / "nan.npz", GOOD, np.full(20, np.nan)), "'labels' must be class numbers"),
        (lambda p: _npz(p / "frac.npz", GOOD, np.full(20, 2.5)), "whole class numbers"),
        (lambda p: _npz(p / "text.npz", GOOD, np.array(["cat"] * 20)), "'labels' must be class numbers"),
        (
            lambda p: _npz(p / "high.npz", GOOD, np.full(20, 10)),
            r"label 10 in 'labels', but the model has 10 classes \(0..9\)",
        ),
        (lambda p: _npz(p / "neg.npz", GOOD, np.full(20, -1)), "label -1 in 'labels'"),
        (
            lambda p: np.save(p / "tiny.npy", np.zeros((20, 3, 1, 1), np.float32)) or p / "tiny.npy",
            "this model takes 32x32 crops",
        ),
        (
            lambda p: np.save(p / "big.npy", np.zeros((4, 3, 64, 48), np.float32)) or p / "big.npy",
            "this model takes 32x32 crops",
        ),
        (
            lambda p: np.save(p / "u8.npy", np.zeros((4, 3, 32, 32), np.uint8)) or p / "u8.npy",
            "uint8 array | this model takes normalised float",
        ),
        (lambda p: np.save(p / "i64.npy", np.zeros((4, 3, 32, 32), np.int64)) or p / "i64.npy", "int64 array"),
        (
            lambda p: (
                np.save(p / "raw.npy", np.random.default_rng(0).integers(0, 256, (4, 3, 32, 32)).astype(np.float32))
                or p / "raw.npy"
            ),
            "raw pixels, not normalised tensors",
        ),
        (lambda p: (p / "bad.npz").write_bytes(b"PK\x03\x04 not a zip") and p / "bad.npz", "not a readable .npz file"),
        (lambda p: (p / "bad.npy").write_bytes(b"\x93NUMPY garbage") and p / "bad.npy", "not a readable .npy file"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_arrays_the_model_cannot_take_are_refused_before_any_work(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match=message):
        open_source(str(make(tmp_path)), CFG, [str(i) for i in range(10)])


def test_labels_out_of_range_are_refused_for_folders_too(tmp_path: Path) -> None:
    root = make_folder(tmp_path)
    (root / "7").rename(root / "12")
    with pytest.raises(UserError, match="class folder '12' is label 12, but the model has 10 classes"):
        open_source(str(root), CFG, [str(i) for i in range(10)])


def test_good_arrays_with_labels_and_float_labels_are_accepted(tmp_path: Path) -> None:
    src = open_source(str(_npz(tmp_path / "ok.npz", GOOD, np.arange(20) % 10.0)), CFG, [str(i) for i in range(10)])
    assert sorted(s.label for s in src.calibration + src.heldout) == sorted((np.arange(20) % 10).tolist())


@pytest.mark.parametrize(("good", "bad"), [(8, 0), (8, 3), (9, 0), (10, 2)])
def test_the_minimum_is_usable_images_in_the_whole_set(tmp_path: Path, good: int, bad: int) -> None:
    """8 usable images calibrate, however the split and the unreadable files fall."""
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(good * 10 + bad)
    for i in range(good):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(d / f"good{i}.png")
    for i in range(bad):
        (d / f"bad{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    src = open_source(str(d), CFG, None)
    used = sum(len(x) for x, _ in src.calibration_batches(4))
    assert used >= MIN_USABLE and len(src.skipped) <= bad
    assert not {s.key for s in src.calibration} & {s.key for s in src.heldout}
    again = sum(len(x) for x, _ in src.calibration_batches(4))  # the entropy pass reads them again
    assert again == used


def test_seven_usable_images_are_too_few(tmp_path: Path) -> None:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(7):
        Image.new("RGB", (20, 20), (i * 30, 0, 0)).save(d / f"{i}.png")
    src = open_source(str(d), CFG, None)
    assert sum(len(x) for x, _ in src.calibration_batches(4)) == 7 < MIN_USABLE


def _usable(src) -> int:  # type: ignore[no-untyped-def]
    return sum(len(x) for x, _ in src.calibration_batches(16))


def test_failed_images_are_replaced_up_to_the_limit(tmp_path: Path) -> None:
    """Half the folder is broken: --limit 64 still calibrates on 64 usable images, drawn in
    the seeded order from the rest of the set, and a second pass reads the same ones."""
    rng = np.random.default_rng(1)
    for i in range(200):
        if i % 2:
            (tmp_path / f"{i:03d}.png").write_bytes(b"")
        else:
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i:03d}.png")
    src = open_source(str(tmp_path), CFG, None, limit=64, heldout=16)
    assert _usable(src) == 64
    assert _usable(src) == 64
    again = open_source(str(tmp_path), CFG, None, limit=64, heldout=16)
    assert _usable(again) == 64 and [s.key for s in again.calibration] == [s.key for s in src.calibration]
    assert len(src.heldout) == 16  # the held-out part is left alone while the rest has images


def test_the_minimum_counts_the_whole_set(tmp_path: Path) -> None:
    """5000 empty files and 40 good PNGs: the good ones are found wherever the split put them."""
    rng = np.random.default_rng(2)
    for i in range(5000):
        (tmp_path / f"empty{i:04d}.png").write_bytes(b"")
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"good{i:02d}.png")
    src = open_source(str(tmp_path), CFG, None)
    used = _usable(src)
    assert used + sum(s.key.split("/")[-1].startswith("good") for s in src.heldout) == 40
    assert used >= MIN_USABLE


def test_nothing_is_drawn_when_nothing_fails(tmp_path: Path) -> None:
    """A set within --limit keeps its fifth held out when every image reads."""
    make_folder(tmp_path, per_class=20)
    src = open_source(str(tmp_path), CFG, [str(i) for i in range(10)], limit=64)
    assert (len(src.calibration), len(src.heldout)) == (32, 8)
    assert _usable(src) == 32 and (len(src.calibration), len(src.heldout)) == (32, 8)
