"""runtime.app.images.gpu.decode on nvImageCodec's CPU backend (no GPU needed): its decode
equals Pillow's, and decode + the numpy reference of the resize give the CPU pipeline's
crop. The GPU itself: tests/runtime/test_gpu_kernel.py (marker gpu)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.transform import ImageTransform, decode_into
from runtime.core import resample
from runtime.core.manifest import InputSpec
from runtime.core.preprocess import ORIENTATION, Preprocessing, open_image, to_tensor

pytest.importorskip("nvidia.nvimgcodec", reason="the gpu-images extra is not installed")

from runtime.app.images.gpu.decode import BatchDecoder, DecodeResult  # noqa: E402

CFG = Preprocessing(224, 0.875, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _photo(hw: tuple[int, int] = (203, 301), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    return np.asarray(small.resize((hw[1], hw[0]), Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Baseline and progressive; 4:4:4, 4:2:2, 4:2:0; greyscale; EXIF orientations 2..8."""
    d = tmp_path_factory.mktemp("jpegs")
    px = _photo()
    paths = []
    for progressive in (False, True):
        for subsampling in (0, 1, 2):
            p = d / f"s{subsampling}_p{int(progressive)}.jpg"
            Image.fromarray(px).save(p, quality=90, subsampling=subsampling, progressive=progressive)
            paths.append(p)
        p = d / f"grey_p{int(progressive)}.jpg"
        Image.fromarray(px[..., 0]).save(p, quality=90, progressive=progressive)
        paths.append(p)
    for orientation in range(2, 9):
        exif = Image.Exif()
        exif[ORIENTATION] = orientation
        p = d / f"exif{orientation}.jpg"
        Image.fromarray(px).save(p, quality=90, exif=exif)
        paths.append(p)
    return paths


def test_cpu_backend_decode_equals_pillow(jpegs: list[Path]) -> None:
    decoded = BatchDecoder(device_id=None).decode([str(p) for p in jpegs])
    for path, d in zip(jpegs, decoded, strict=True):
        assert d.error is None and d.image is not None, f"{path.name} was not decoded by nvImageCodec"
        assert np.array_equal(host_pixels(d), np.asarray(open_image(path))), path.name


@pytest.mark.parametrize("uint8", [True, False])
def test_decode_plus_reference_resize_is_the_cpu_pipeline(jpegs: list[Path], uint8: bool) -> None:
    transform = ImageTransform(CFG, InputSpec(dtype="uint8") if uint8 else InputSpec())
    for d, path in zip(BatchDecoder(device_id=None).decode([str(p) for p in jpegs]), jpegs, strict=True):
        crop = resample.resize_crop(host_pixels(d), CFG)
        got = crop if uint8 else to_tensor(Image.fromarray(crop), CFG)
        assert np.array_equal(got, transform.from_path(path)), path.name


def test_fallback_files_go_through_pillow(tmp_path: Path) -> None:
    px = _photo()
    files = {
        "cmyk.jpg": Image.fromarray(px).convert("CMYK"),
        "a.gif": Image.fromarray(px).convert("P"),
        "palette.png": Image.fromarray(px).convert("P"),
    }
    for name, img in files.items():
        img.save(tmp_path / name)
    paths = [str(tmp_path / name) for name in files]
    for path, d in zip(paths, BatchDecoder(device_id=None).decode(paths), strict=True):
        assert d.image is None and d.pixels is not None, path
        assert np.array_equal(d.pixels, np.asarray(open_image(path)))


def test_bomb_header_and_broken_files_are_skip_records(tmp_path: Path) -> None:
    Image.fromarray(_photo()).save(tmp_path / "ok.jpg", quality=90)
    data = bytearray((tmp_path / "ok.jpg").read_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (30000).to_bytes(2, "big") + (30000).to_bytes(2, "big")  # height, width
    (tmp_path / "bomb.jpg").write_bytes(bytes(data))
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    names = ["bomb.jpg", "junk.jpg", "ok.jpg"]
    bomb, junk, ok = BatchDecoder(device_id=None).decode([str(tmp_path / n) for n in names])
    assert bomb.error is not None and "30000x30000" in bomb.error and "decompression bomb" in bomb.error
    assert bomb.image is None and bomb.pixels is None  # refused from the header, never decoded
    assert junk.error is not None and "unreadable image" in junk.error
    assert ok.error is None and ok.image is not None


def test_extreme_aspect_ratios_are_skip_records_in_the_cpu_paths_words(tmp_path: Path) -> None:
    """As the CPU path refuses them in resized_size, before any resize table is built;
    the check is on the upright size (a 20000x1 JPEG stored turned by EXIF is 1x20000)."""
    Image.fromarray(np.zeros((1, 50000, 3), np.uint8)).save(tmp_path / "wide.png")
    Image.fromarray(np.zeros((1, 20000, 3), np.uint8)).save(tmp_path / "wide.jpg")
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotate 90 degrees: stored 20000x1, upright 1x20000
    Image.fromarray(np.zeros((1, 20000, 3), np.uint8)).save(tmp_path / "turned.jpg", exif=exif)
    Image.fromarray(_photo()).save(tmp_path / "ok.jpg", quality=90)
    paths = [str(tmp_path / n) for n in ("wide.png", "wide.jpg", "turned.jpg", "ok.jpg")]
    transform = ImageTransform(CFG)
    decoder = BatchDecoder(device_id=None, cfg=CFG, size=transform.hw)
    decoded = decoder.decode(paths)
    sample = transform.empty_batch(1)[0]
    for path, d in zip(paths[:3], decoded[:3], strict=True):
        cpu_reason = decode_into(transform, path, sample)
        assert cpu_reason is not None and "pixel limit" in cpu_reason and "aspect ratio" in cpu_reason
        assert (d.error, d.image, d.pixels) == (cpu_reason, None, None), path
    assert "1x20000 would be resized" in str(decoded[2].error)
    assert decoded[3].error is None and decoded[3].image is not None
    # The Pillow path's pixels are checked too (a file whose header nvImageCodec cannot read).
    assert decoder.pillow(paths[0]).pixels is not None
    decoder.header = lambda path: (None, None)  # type: ignore[method-assign]
    assert decoder.decode(paths[:1])[0].error == decode_into(transform, paths[0], sample)


def test_a_batched_decode_that_raises_sends_its_files_through_pillow(
    jpegs: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    decoder = BatchDecoder(device_id=None)

    class Broken:
        def decode(self, *args: object, **kwargs: object) -> list[object]:
            raise RuntimeError("nvImageCodec: decode failed")

    decoder._decoder = Broken()
    paths = [str(p) for p in jpegs[:3]]
    with caplog.at_level(logging.DEBUG, logger="runtime.app.images.gpu.decode"):
        decoded = decoder.decode(paths)
    for path, d in zip(paths, decoded, strict=True):
        assert d.error is None and d.image is None and d.pixels is not None, path
        assert np.array_equal(d.pixels, np.asarray(open_image(path)))
    assert "batched decode raised" in caplog.text and "nvImageCodec: decode failed" in caplog.text


def host_pixels(d: DecodeResult) -> np.ndarray:
    """A decoded file's pixels on the host (a copy from the GPU where decoded there)."""
    if d.pixels is not None:
        return d.pixels
    if d.image is None:
        raise ValueError(f"no pixels: {d.error}")
    return np.asarray(d.image.cpu())
