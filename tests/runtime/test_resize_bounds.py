"""A small file may not force a huge resize: the resized size is bounded, not only the decoded one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.pipeline import HostPipeline
from runtime.app.images.transform import ImageTransform, decode_into
from runtime.core.manifest import InputSpec
from runtime.core.preprocess import MAX_RESIZED_PIXELS, ImageError, Preprocessing, resized_size
from tests.conftest import run_cli

CFG = Preprocessing(224, 0.875, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@pytest.mark.parametrize(
    ("width", "height", "size"),
    [(50000, 1, None), (1, 50000, None), (30000, 3, None), (4000, 1, (448, 448)), (3, 20000, (224, 320))],
)
def test_extreme_aspect_ratios_are_refused_from_the_size_alone(
    width: int, height: int, size: tuple[int, int] | None
) -> None:
    with pytest.raises(ImageError, match="would be resized to"):
        resized_size(width, height, CFG, size)


@pytest.mark.parametrize(("width", "height"), [(4000, 100), (100, 4000), (640, 480), (1, 1), (20000, 20)])
def test_ordinary_and_panoramic_images_still_fit(width: int, height: int) -> None:
    new_w, new_h = resized_size(width, height, CFG)
    assert new_w * new_h <= MAX_RESIZED_PIXELS and min(new_w, new_h) == 256


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_a_tiny_extreme_png_becomes_a_skip_record(tmp_path: Path, dtype: str) -> None:
    path = tmp_path / "strip.png"
    Image.new("L", (50000, 1)).save(path, optimize=True)
    assert path.stat().st_size < 1000  # the header is the whole threat
    transform = ImageTransform(CFG, InputSpec(dtype))
    dest = transform.empty_batch(1)[0]
    reason = decode_into(transform, str(path), dest)
    assert reason is not None and "would be resized to" in reason
    with HostPipeline(transform, 2, 0) as pipeline:
        (batch,) = list(pipeline.batches([path]))
    assert batch.images is None and "would be resized to" in batch.errors[0]
    np.testing.assert_array_equal(dest, 0)


def test_classify_reports_the_extreme_file_and_goes_on(digits_export: Path, tmp_path: Path) -> None:
    Image.new("L", (1, 4_000_000)).save(tmp_path / "tall.png")  # the digits model takes 8x8: 8 x 32M
    Image.new("L", (8, 8), 128).save(tmp_path / "fine.png")
    out = tmp_path / "out.jsonl"
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(tmp_path), "--output", str(out))
    assert res.returncode == 3, res.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert "would be resized to" in rows["tall.png"]["error"] and "classes" in rows["fine.png"]
