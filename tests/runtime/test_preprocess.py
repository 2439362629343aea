from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.transform import ImageTransform
from runtime.core.errors import UserError
from runtime.core.manifest import InputSpec
from runtime.core.preprocess import ORIENTATION, Preprocessing, load_and_preprocess, preprocess, resize_and_crop

IMAGENET = Preprocessing(224, 0.96, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_resize_shorter_side_then_centre_crop_like_timm() -> None:
    img = Image.new("RGB", (500, 300))
    out = resize_and_crop(img, IMAGENET)
    assert out.size == (224, 224)
    # shorter side 300 -> floor(224 / 0.96) = 233, longer side int(233 * 500 / 300) = 388
    assert resize_and_crop(img, Preprocessing(233, 1.0, "bicubic", IMAGENET.mean, IMAGENET.std)).size == (233, 233)


def test_normalisation_and_layout() -> None:
    img = Image.new("RGB", (224, 224), (255, 0, 128))
    x = preprocess(img, Preprocessing(224, 1.0, "bilinear", (0.5, 0.5, 0.5), (0.25, 0.5, 1.0)))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [(1 - 0.5) / 0.25, (0 - 0.5) / 0.5, (128 / 255 - 0.5) / 1.0], atol=1e-6)


def test_non_square_target() -> None:
    x = preprocess(Image.new("RGB", (640, 480)), IMAGENET, (160, 256))
    assert x.shape == (3, 160, 256)


def _big_jpeg(path: Path, size: tuple[int, int] = (1600, 1200)) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(base).resize(size, Image.Resampling.BICUBIC).save(path, quality=95)
    return path


def test_large_jpegs_are_decoded_exactly_by_default(tmp_path: Path) -> None:
    """A short side of 932 px or more once triggered a reduced (draft) decode."""
    path = _big_jpeg(tmp_path / "big.jpg")
    with Image.open(path) as im:
        reference = preprocess(im.convert("RGB"), IMAGENET)  # what timm's eval transform sees
    np.testing.assert_array_equal(load_and_preprocess(path, IMAGENET), reference)
    np.testing.assert_array_equal(ImageTransform(IMAGENET).from_path(path), reference)
    # the reduced decode stays available, on request, and is not exact
    fast = ImageTransform(IMAGENET, reduced_decode=True).from_path(path)
    assert 0 < np.abs(fast - reference).max() and np.abs(fast - reference).mean() < 0.05


def _oriented(path: Path, orientation: int) -> tuple[Path, Image.Image]:
    """A JPEG stored sideways with an EXIF orientation tag, and how it should look upright."""
    rng = np.random.default_rng(1)
    stored = Image.fromarray(rng.integers(0, 255, (30, 60, 3), dtype=np.uint8)).resize((240, 120))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    stored.save(path, exif=exif, quality=100)
    with Image.open(path) as im:
        pixels = Image.fromarray(np.asarray(im.convert("RGB")))  # the stored pixels, no metadata
    return path, pixels.transpose(Image.Transpose.ROTATE_270)  # orientation 6: turn 90 degrees clockwise


def test_exif_orientation_is_applied_by_default_with_an_opt_out(tmp_path: Path) -> None:
    cfg = Preprocessing(64, 1.0, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    path, upright = _oriented(tmp_path / "phone.jpg", 6)
    np.testing.assert_array_equal(load_and_preprocess(path, cfg), preprocess(upright, cfg))
    np.testing.assert_array_equal(ImageTransform(cfg).from_path(path), preprocess(upright, cfg))
    with Image.open(path) as im:  # an image the caller opened itself
        np.testing.assert_array_equal(ImageTransform(cfg).from_image(im), preprocess(upright, cfg))
    off = dataclasses.replace(cfg, exif_transpose=False)
    with Image.open(path) as im:
        sideways = Image.fromarray(np.asarray(im.convert("RGB")))
    np.testing.assert_array_equal(ImageTransform(off).from_path(path), preprocess(sideways, off))
    assert not np.array_equal(ImageTransform(off).from_path(path), ImageTransform(cfg).from_path(path))


def test_preprocessing_round_trips_and_old_manifests_default_to_exif_on() -> None:
    assert Preprocessing.from_dict(IMAGENET.to_dict()) == IMAGENET
    old = {k: v for k, v in IMAGENET.to_dict().items() if k != "exif_transpose"}
    assert Preprocessing.from_dict(old).exif_transpose is True
    with pytest.raises(UserError, match="crop_pct"):
        Preprocessing.from_dict({**old, "crop_pct": 1.5})


def test_uint8_transform_hands_over_the_crop_and_float_is_its_normalisation(tmp_path: Path) -> None:
    path = _big_jpeg(tmp_path / "photo.jpg", (500, 375))
    crop = ImageTransform(IMAGENET, InputSpec("uint8")).from_path(path)
    assert crop.dtype == np.uint8 and crop.shape == (224, 224, 3)
    x = ImageTransform(IMAGENET).from_path(path)
    mean, std = np.asarray(IMAGENET.mean, np.float32), np.asarray(IMAGENET.std, np.float32)
    np.testing.assert_array_equal(x, ((crop.astype(np.float32) * np.float32(1 / 255) - mean) / std).transpose(2, 0, 1))
