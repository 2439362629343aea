"""DevicePipeline's own code on the CPU: nvImageCodec's CPU backend decodes, the kernels
built for the host resize and normalise (tests/kernel_host), CuPy is a numpy stand-in.
Covers its thread, the slot ring and its contract, stop, the decode memory budget and the
count of GPU-to-Pillow fallbacks. Not a GPU run: streams are no-ops here."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("nvidia.nvimgcodec", reason="the gpu-images extra is not installed")

import runtime.app.images.gpu.pipeline as gp  # noqa: E402
import runtime.app.images.gpu.resize as resize  # noqa: E402
from runtime.app.images.gpu import decode  # noqa: E402
from runtime.app.images.transform import ImageTransform  # noqa: E402
from runtime.core import resample  # noqa: E402
from runtime.core.manifest import InputSpec  # noqa: E402
from runtime.core.preprocess import Preprocessing, open_image, to_tensor  # noqa: E402
from tests.kernel_host import host_cupy  # noqa: E402
from tests.runtime.test_gpu_decode import host_pixels  # noqa: E402

CFG = Preprocessing(32, 0.9, "bicubic", (0.5, 0.4, 0.3), (0.2, 0.3, 0.4))
if host_cupy.compiler() is None:
    pytest.skip("no g++ to build the kernels for the host", allow_module_level=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    out = []
    for k, hw in enumerate([(40, 60), (61, 37), (40, 60), (33, 33), (70, 45), (40, 60), (50, 52)]):
        p = d / f"{k}.jpg"
        Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(p, quality=90)
        out.append(str(p))
    (d / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out.insert(3, str(d / "broken.jpg"))
    return out


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> Any:
    cp = host_cupy.module()
    monkeypatch.setattr(gp, "cupy", lambda: cp)
    monkeypatch.setattr(resize, "cupy", lambda: cp)
    real = decode.BatchDecoder

    def cpu_backend(exif: bool, device_id: int | None, *args: Any, **kwargs: Any) -> decode.BatchDecoder:
        return real(exif, None, *args, **kwargs)  # nvImageCodec's CPU backend

    monkeypatch.setattr(gp, "BatchDecoder", cpu_backend)
    return cp


def _transform(uint8: bool = False) -> ImageTransform:
    return ImageTransform(CFG, InputSpec("uint8" if uint8 else "float32"))


def _want(path: str) -> np.ndarray:
    return to_tensor(Image.fromarray(resample.resize_crop(np.asarray(open_image(path)), CFG)), CFG)


def test_batches_in_order_equal_the_reference_and_skip_as_data(cpu: Any, files: list[str]) -> None:
    with gp.DevicePipeline(_transform(), batch=3) as pipe:
        got = list(pipe.batches(files))
        ring = pipe._f32
    assert [b.paths for b in got] == [files[i : i + 3] for i in range(0, len(files), 3)]
    seen = 0
    for b in got:
        assert np.shares_memory(b.images, ring)  # assembled in the ring, not allocated per batch
        for j, i in enumerate(b.ok):
            assert np.array_equal(b.images[j], _want(b.paths[i])), b.paths[i]
        seen += len(b.ok) + len(b.errors)
    assert seen == len(files) and any("broken" in b.paths[i] for b in got for i in b.errors)


def test_the_ring_is_three_slots_reused_in_turn(cpu: Any, files: list[str]) -> None:
    with gp.DevicePipeline(_transform(uint8=True), batch=1, waiting=1) as pipe:
        slots = [
            next(k for k in range(3) if np.shares_memory(b.images, pipe._u8[k])) for b in pipe.batches(files) if b.ok
        ]
    ok = [i for i, f in enumerate(files) if "broken" not in f]
    assert slots == [i % 3 for i in ok]


def test_the_producer_refuses_to_fill_a_slot_the_consumer_holds(cpu: Any, files: list[str]) -> None:
    with gp.DevicePipeline(_transform(), batch=1, waiting=1) as pipe:
        pipe.slots = 2  # a ring one slot too small for its queue: slot 0 comes round while held
        stream = pipe.batches(files)
        next(stream)
        with pytest.raises(RuntimeError, match="decode ring"):
            list(stream)


def test_stop_mid_run_joins_the_thread_and_a_new_run_starts(cpu: Any, files: list[str]) -> None:
    with gp.DevicePipeline(_transform(), batch=2) as pipe:
        stream = pipe.batches(files)
        first = next(stream)
        stream.close()  # the consumer stops early
        assert pipe._thread is None
        again = next(pipe.batches(files))
        assert again.paths == first.paths


def test_fallbacks_to_pillow_are_counted_and_reported_once_as_a_warning(
    cpu: Any, files: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    class OutOfMemory:
        def decode(self, *args: object, **kwargs: object) -> list[object]:
            raise MemoryError("out of memory")

    with caplog.at_level(logging.WARNING, logger="runtime"):
        with gp.DevicePipeline(_transform(), batch=4) as pipe:
            pipe._decoder._decoder = OutOfMemory()
            got = list(pipe.batches(files))
    assert sum(len(b.ok) for b in got) == len(files) - 1  # Pillow decoded them all
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "7 file(s)" in warnings[0].getMessage() and "MemoryError" in warnings[0].getMessage()


def test_a_batched_decode_is_split_to_fit_its_memory_budget(files: list[str]) -> None:
    assert decode.decode_groups([10, 10, 10, 25, 5], 20) == [[0, 1], [2], [3], [4]]
    decoder = decode.BatchDecoder(device_id=None, max_bytes=2 * 40 * 60 * 3)
    calls: list[int] = []
    real = decoder._decoder

    class Counting:
        def decode(self, streams: list[Any], **kwargs: Any) -> Any:
            calls.append(len(streams))
            return real.decode(streams, **kwargs)

    decoder._decoder = Counting()
    good = [f for f in files if "broken" not in f]
    out = decoder.decode(good)
    assert max(calls) <= 2 and sum(calls) == len(good) and decoder.fallbacks == 0
    for path, d in zip(good, out, strict=True):
        assert np.array_equal(host_pixels(d), np.asarray(open_image(path))), path


def test_a_ray_actor_call_holds_several_batches_so_decode_overlaps_inference(cpu: Any, files: list[str]) -> None:
    """An actor that decodes on its GPU gets BATCHES_PER_BLOCK batches per call (one batch
    per call gave the pipeline's thread nothing to run ahead on); within a call, the next
    batch is under way while the consumer still holds the current one."""
    import time

    from runtime.app.ray.stages import BATCHES_PER_BLOCK, actor_batch_size

    assert actor_batch_size(4, in_actors=True) == 4 * BATCHES_PER_BLOCK > 4 == actor_batch_size(4, in_actors=False)
    with gp.DevicePipeline(_transform(), batch=2) as pipe:
        stream = pipe.batches(files)
        next(stream)  # held by the consumer (the engine would be running on it now)
        while not pipe._queued:  # the producer starts the next batch without waiting for us
            time.sleep(0.01)
        assert pipe._held == 0 and pipe._queued[0] == 1
        stream.close()
