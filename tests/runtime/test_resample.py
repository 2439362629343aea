"""runtime.core.resample: the numpy reference of Pillow's resampling is bit-identical to
`resize_and_crop` (Pillow's resize + centre crop) on the same decoded pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from runtime.core import resample
from runtime.core.preprocess import Preprocessing, resize_and_crop, to_rgb

BICUBIC = Preprocessing(224, 0.875, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
BILINEAR = Preprocessing(224, 0.96, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
SMALL = Preprocessing(32, 0.9, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

# (H, W): down and up, odd sizes, portrait and landscape, one side unchanged (one pass).
SIZES = [(375, 500), (500, 375), (97, 61), (61, 97), (256, 256), (255, 300), (300, 255), (1000, 257), (17, 301), (3, 5)]
TARGETS = [None, (160, 224), (224, 160)]


def _random(hw: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


def _gradient(hw: tuple[int, int]) -> np.ndarray:
    """Smooth ramps with hard edges: where rounding to the nearest level is most often at stake."""
    h, w = hw
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), ((x // 7 + y // 5) % 2) * 255], -1).astype(
        np.uint8
    )


def _pillow(pixels: np.ndarray, cfg: Preprocessing, size: tuple[int, int] | None) -> np.ndarray:
    return np.asarray(resize_and_crop(Image.fromarray(pixels), cfg, size))


@pytest.mark.parametrize("cfg", [BICUBIC, BILINEAR], ids=["bicubic", "bilinear"])
@pytest.mark.parametrize("hw", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_reference_is_bit_identical_to_pillow(cfg: Preprocessing, hw: tuple[int, int]) -> None:
    for k, size in enumerate(TARGETS):
        for pixels in (_random(hw, k), _gradient(hw)):
            want = _pillow(pixels, cfg, size)
            got = resample.resize_crop(pixels, cfg, size)
            assert got.shape == want.shape and got.dtype == np.uint8
            assert np.array_equal(got, want), f"{hw} -> {size}: {np.count_nonzero(got != want)} pixels differ"


def test_greyscale_converted_as_the_pipeline_does() -> None:
    grey = Image.fromarray(_random((123, 77), 5)[..., 0], "L")
    rgb = to_rgb(grey)
    pixels = np.asarray(rgb)
    assert np.array_equal(resample.resize_crop(pixels, BICUBIC), np.asarray(resize_and_crop(rgb, BICUBIC)))


def test_small_model_sizes_and_large_downscale() -> None:
    """A 32 px model from a large photo: wide windows (many taps per output pixel)."""
    pixels = _random((1200, 1600), 9)
    assert np.array_equal(resample.resize_crop(pixels, SMALL), _pillow(pixels, SMALL, None))


def test_only_the_kept_window_is_computed() -> None:
    first, second = resample.plan((375, 500), BICUBIC).passes
    assert (first.axis, second.axis) == (1, 0)  # horizontal first
    assert len(first.taps.start) == 224 and len(second.taps.start) == 224
    assert first.n_other < 375  # the horizontal pass skips rows the crop never reads
    assert resample.plan((256, 256), BICUBIC).passes == ()  # same size: a plain crop


@pytest.mark.parametrize(
    ("version", "in_hw", "resized_hw", "want"),
    [
        ((13, 0), (1000, 257), (996, 256), True),  # 4 rows lost > 2 x 1 column
        ((13, 0), (120, 100), (100, 90), False),  # 20 rows = 2 x 10 columns: not more
        ((13, 0), (100, 100), (50, 200), True),
        ((12, 3), (1000, 257), (996, 256), False),
        ((12, 3), (20000, 150), (10000, 75), True),  # 100 times taller than wide
        ((11, 0), (20000, 150), (10000, 75), False),
    ],
)
def test_pass_order_follows_the_pillow_version(
    version: tuple[int, int], in_hw: tuple[int, int], resized_hw: tuple[int, int], want: bool
) -> None:
    assert resample.vertical_first(in_hw, resized_hw, version) is want


def test_fixed_point_weights_sum_to_one() -> None:
    taps = resample.coefficients(500, 256, "bicubic")
    sums = taps.weights.astype(np.int64).sum(axis=1)
    assert np.all(np.abs(sums - (1 << resample.PRECISION_BITS)) <= taps.ksize)


def test_unsupported_interpolation_is_refused() -> None:
    with pytest.raises(ValueError, match="lanczos"):
        resample.coefficients(10, 5, "lanczos")


def test_rows_are_copies_so_a_cached_plan_keeps_only_the_crop() -> None:
    taps = resample.coefficients(50_000, 256, "bicubic")
    kept = taps.rows(10, 20)
    assert len(kept.start) == 10 and np.array_equal(kept.weights, taps.weights[10:20])
    for part, whole in ((kept.start, taps.start), (kept.count, taps.count), (kept.weights, taps.weights)):
        assert not np.shares_memory(part, whole)
