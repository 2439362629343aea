"""The host pipeline: workers and in-process decoding give the same batches, in order,
assembled into the caller's buffer, with bad files reported and memory bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.pipeline import HostPipeline
from runtime.app.images.transform import ImageTransform
from runtime.core.errors import UserError
from runtime.core.manifest import InputSpec
from runtime.core.preprocess import Preprocessing

CFG = Preprocessing(32, 0.875, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(11):
        path = root / f"{i:02d}.jpg"
        Image.fromarray(rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    (root / "05.jpg").write_bytes(b"not a jpeg")  # a bad file in the middle
    return paths


def _collect(pipeline: HostPipeline, files: list[Path], out: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    arrays, errors = [], []
    for b in pipeline.batches(files, out):
        if b.images is not None:
            arrays.append(b.images.copy())
        errors += [f"{b.paths[i]}|{reason}" for i, reason in sorted(b.errors.items())]
    return np.concatenate(arrays), errors


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_workers_match_in_process_decoding(files: list[Path], dtype: str) -> None:
    transform = ImageTransform(CFG, InputSpec(dtype))
    with HostPipeline(transform, 4, 0) as here:
        expected, expected_errors = _collect(here, files)
    with HostPipeline(transform, 4, 2, prefetch=2) as workers:
        for _ in range(2):  # a pipeline serves several passes
            got, errors = _collect(workers, files)
            np.testing.assert_array_equal(got, expected)
            assert errors == expected_errors
    assert got.dtype == np.dtype(dtype) and got.shape == (10, *transform.sample_shape)
    assert len(errors) == 1 and errors[0].startswith(f"{files[5]}|unreadable image")
    single = np.stack([transform.from_path(p) for i, p in enumerate(files) if i != 5])
    np.testing.assert_array_equal(got, single)


def test_batches_are_assembled_in_the_callers_buffer(files: list[Path]) -> None:
    transform = ImageTransform(CFG, InputSpec("uint8"))
    buffer = np.empty((8, *transform.sample_shape), np.uint8)  # larger than a batch is fine
    with HostPipeline(transform, 4, 1) as pipeline:
        for b in pipeline.batches(files, buffer):
            assert b.images is not None and np.shares_memory(b.images, buffer)
    with pytest.raises(UserError, match="batch buffer"):
        next(HostPipeline(transform, 4, 0).batches(files, np.empty((4, 3, 32, 32), np.float32)))


def test_memory_is_bounded_by_the_slot_ring() -> None:
    pipeline = HostPipeline(ImageTransform(CFG), 32, 8)
    assert pipeline.slots <= 2 + -(-2 * 8 // 32) + 1  # independent of the number of images


def test_a_non_image_error_is_reported_with_the_file_and_its_traceback_kept_at_debug(
    files: list[Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from runtime.app.images.transform import decode_into

    transform = ImageTransform(CFG)

    def buggy(path: str) -> np.ndarray:
        raise TypeError("unsupported operand")  # a code bug looks like this too

    monkeypatch.setattr(ImageTransform, "from_path", lambda self, path: buggy(path))
    with caplog.at_level(logging.DEBUG, logger="runtime.app.images.transform"):
        reason = decode_into(transform, str(files[0]), transform.empty_batch(1)[0])
    assert reason == "cannot decode (TypeError: unsupported operand)"
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.levelno == logging.DEBUG and str(files[0]) in record.getMessage()
