from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from runtime.preprocess import Preprocessing, load_and_preprocess, preprocess, resize_and_crop

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


def test_jpeg_draft_decoding_is_close_to_full_decoding(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    big = Image.fromarray(base).resize((1600, 1200), Image.Resampling.BICUBIC)
    big.save(tmp_path / "big.jpg", quality=95)
    fast = load_and_preprocess(tmp_path / "big.jpg", IMAGENET)
    with Image.open(tmp_path / "big.jpg") as im:
        full = preprocess(im.convert("RGB"), IMAGENET)
    assert np.abs(fast - full).mean() < 0.05  # in normalised units (~1% of the range)
