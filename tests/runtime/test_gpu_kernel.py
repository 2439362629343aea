"""On a GPU (`make test-gpu`): the resize kernel is bit-identical to resample's numpy
reference, and GPU-decoded pixels are within 1 level of Pillow's. NOT yet run on a GPU
when written (none was at hand): run these before relying on `--decode gpu`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.core import resample
from runtime.core.preprocess import Preprocessing, open_image, to_tensor

pytestmark = pytest.mark.gpu

CFGS = [
    Preprocessing(224, 0.875, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    Preprocessing(224, 0.96, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
]
SIZES = [(375, 500), (500, 375), (97, 61), (1000, 257), (256, 256), (255, 300), (1200, 1600), (17, 301)]


@pytest.mark.parametrize("cfg", CFGS, ids=["bicubic", "bilinear"])
def test_kernel_is_bit_identical_to_the_reference(cfg: Preprocessing) -> None:
    cp = pytest.importorskip("cupy")
    from runtime.app.images.gpu.resize import DeviceResizer

    resizer = DeviceResizer(cfg, None, cp.cuda.Stream())
    rng = np.random.default_rng(0)
    for hw in SIZES:
        pixels = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        out = cp.zeros((1, 224, 224, 3), dtype=cp.uint8)
        resizer.into(cp.asarray(pixels), out[0])
        want = resample.resize_crop(pixels, cfg)
        resizer.stream.synchronize()
        assert np.array_equal(cp.asnumpy(out[0]), want), hw
        f32 = cp.empty((1, 3, 224, 224), dtype=cp.float32)
        resizer.normalise(out, f32)
        resizer.stream.synchronize()
        assert np.array_equal(cp.asnumpy(f32[0]), to_tensor(Image.fromarray(want), cfg)), hw


def test_gpu_decode_within_one_level_of_pillow(tmp_path: Path) -> None:
    pytest.importorskip("cupy")
    from runtime.app.images.gpu.decode import BatchDecoder
    from tests.runtime.test_gpu_decode import host_pixels

    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize((500, 375))
    paths = []
    for subsampling in (0, 1, 2):
        for progressive in (False, True):
            p = tmp_path / f"{subsampling}{int(progressive)}.jpg"
            base.save(p, quality=90, subsampling=subsampling, progressive=progressive)
            paths.append(str(p))
    for path, d in zip(paths, BatchDecoder(device_id=0).decode(paths), strict=True):
        assert d.image is not None, path
        diff = np.abs(host_pixels(d).astype(int) - np.asarray(open_image(path)).astype(int))
        assert diff.max() <= 1, (path, diff.max())


@pytest.mark.parametrize("cfg", CFGS, ids=["bicubic", "bilinear"])
def test_batched_launch_matches_the_reference_per_image(cfg: Preprocessing) -> None:
    """One batch_into call over mixed sizes (repeated sizes share a launch) and sources
    with a row pitch wider than the row, as decoders allocate them: every slot is the
    reference crop of its own image, in order."""
    cp = pytest.importorskip("cupy")
    from runtime.app.images.gpu.resize import DeviceResizer

    resizer = DeviceResizer(cfg, None, cp.cuda.Stream())
    rng = np.random.default_rng(2)
    hws = [(375, 500), (500, 375), (375, 500), (97, 61), (375, 500), (256, 256), (1200, 1600), (500, 375)]
    pixels = [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for hw in hws]
    sources = []
    for k, px in enumerate(pixels):
        padded = cp.zeros((px.shape[0], px.shape[1] + 7 * (k % 2), 3), dtype=cp.uint8)
        padded[:, : px.shape[1]] = cp.asarray(px)
        sources.append(padded[:, : px.shape[1]])  # odd k: a pitched view, not contiguous
    out = cp.full((len(hws) + 1, 224, 224, 3), 7, dtype=cp.uint8)
    resizer.batch_into(sources, out)
    resizer.stream.synchronize()
    for k, px in enumerate(pixels):
        assert np.array_equal(cp.asnumpy(out[k]), resample.resize_crop(px, cfg)), (k, hws[k])
    assert int(out[len(hws)].min()) == 7 == int(out[len(hws)].max())  # no write past the images


_SPIN = r"""
extern "C" __global__ void spin(long long cycles) {
    long long t0 = clock64();
    while (clock64() - t0 < cycles) {}
}
"""


def test_uploads_and_copies_are_ordered_before_the_kernels_on_a_non_blocking_stream() -> None:
    """The pipeline's stream is non-blocking: work on the legacy default stream is not
    ordered before it. With that stream held busy, new sizes' tables and the contiguous
    copy of a channel-strided source must still be in place when the kernels read them
    (they are made on the resizer's stream, not the default one)."""
    cp = pytest.importorskip("cupy")
    from runtime.app.images.gpu.resize import DeviceResizer

    cfg = CFGS[0]
    stream = cp.cuda.Stream(non_blocking=True)
    resizer = DeviceResizer(cfg, None, stream)
    spin = cp.RawKernel(_SPIN, "spin")
    rng = np.random.default_rng(3)
    for hw in [(375, 500), (97, 61), (1200, 1600), (500, 375)]:  # each size new: its tables uploaded now
        pixels = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        with stream:
            bgr = cp.asarray(np.ascontiguousarray(pixels[..., ::-1]))
        stream.synchronize()
        source = bgr[..., ::-1]  # channel stride -1: batch_into copies it first
        out = cp.zeros((1, 224, 224, 3), dtype=cp.uint8)
        stream.synchronize()
        spin((1,), (1,), (np.int64(2_000_000_000),), stream=cp.cuda.Stream.null)  # about a second
        resizer.batch_into([source], out)
        stream.synchronize()  # the resizer's stream only: the default stream may still spin
        assert np.array_equal(cp.asnumpy(out[0]), resample.resize_crop(pixels, cfg)), hw
        cp.cuda.Stream.null.synchronize()
