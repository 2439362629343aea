"""Image files -> batches of the model's input in device memory, for `--decode gpu`.

The same interface as runtime.app.images.pipeline.HostPipeline (a context manager whose
`batches(paths)` yields `Batch`es in input order, skips as data), so classify, evaluate
and bench take either. Here `Batch.images` is a CuPy array on the GPU: uint8 NHWC for a
`--input uint8` model, normalised float32 NCHW otherwise. The TensorRT runner reads it
in place through DLPack; it never visits the host.

One thread decodes and resizes batch i + 1 (nvImageCodec on a CUDA stream of its own,
then the resize kernel) while the consumer runs the engine on batch i. Batches live in a
ring of `queue + 2` device slots: one being filled, at most `queue` waiting, one held by
the consumer (which may reuse a batch's memory once it asks for the next), so memory is
bounded whatever the number of files.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ....core.errors import UserError
from ..transform import Batch, ImageTransform
from . import cupy
from .decode import BatchDecoder
from .resize import DeviceResizer

log = logging.getLogger(__name__)

_DONE = object()


class DevicePipeline:
    """Decode + resize on GPU `device_id` into device batches (see the module docstring)."""

    def __init__(self, transform: ImageTransform, batch: int, device_id: int = 0, waiting: int = 1) -> None:
        if batch < 1:
            raise UserError(f"--batch must be at least 1, got {batch}")
        if transform.reduced_decode:
            log.info("--reduced-decode is a CPU-path option; the GPU path always decodes in full (exact)")
        self.transform, self.batch, self.device_id, self.waiting = transform, batch, device_id, waiting
        self.slots = waiting + 2  # the ring: one being filled, `waiting` queued, one the consumer holds
        self.name, self.workers = "GPU pipeline", 0  # as bench's table labels pipelines
        self._cp: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ring = threading.Lock()
        self._held, self._queued = -1, collections.deque[int]()

    def start(self) -> DevicePipeline:
        cp = cupy()
        self._cp = cp
        with cp.cuda.Device(self.device_id):
            self._stream = cp.cuda.Stream(non_blocking=True)
            cfg = self.transform.preprocessing
            self._decoder = BatchDecoder(cfg.exif_transpose, self.device_id, cfg, self.transform.hw)
            self._resizer = DeviceResizer(self.transform.preprocessing, self.transform.hw, self._stream)
            h, w = self.transform.hw
            slots = self.slots
            self._u8 = cp.empty((slots, self.batch, h, w, 3), dtype=cp.uint8)
            self._f32 = None if self.transform.input.is_uint8 else cp.empty((slots, self.batch, 3, h, w), cp.float32)
        return self

    def close(self) -> None:
        """Stop the decode thread (it finishes the batch in hand) and report fallbacks to Pillow."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        decoder = self.__dict__.get("_decoder")
        if decoder is not None and decoder.fallbacks:
            log.warning(
                "%d file(s) nvImageCodec should have decoded on the GPU went through Pillow on the CPU instead%s",
                decoder.fallbacks,
                f" (last batched-decode error: {decoder.last_failure})" if decoder.last_failure else "",
            )
            decoder.fallbacks = 0

    def __enter__(self) -> DevicePipeline:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close()

    def batches(self, paths: Sequence[str | Path], out: Any = None) -> Iterator[Batch]:
        """Batches of `paths` in input order. `out` (a host buffer for HostPipeline) is
        ignored: batches are assembled in this pipeline's device ring.

        The ring's contract: a batch's memory is refilled once the consumer has asked for the
        batch after next, so by then everything reading it, on the GPU too, must be done.
        TensorRTRunner.infer_batches keeps it: it waits for the engine to have read a batch
        (release_inputs) before it pulls the next. The producer checks that the slot it
        fills is neither the consumer's nor a queued one (a RuntimeError, never a silent
        overwrite)."""
        if self._cp is None:
            raise UserError("the GPU pipeline is not started (use it as a context manager)")
        chunks = [[str(p) for p in paths[i : i + self.batch]] for i in range(0, len(paths), self.batch)]
        results: queue.Queue[Any] = queue.Queue(maxsize=self.waiting)
        self._stop.clear()
        self._held, self._queued = -1, collections.deque[int]()  # the ring's slots in use
        self._thread = threading.Thread(target=self._produce, args=(chunks, results), daemon=True, name="gpu-decode")
        self._thread.start()
        try:
            while True:
                item = results.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                slot, batch = item
                with self._ring:
                    self._held = self._queued.popleft()
                if self._held != slot:
                    raise RuntimeError(f"decode ring: batch of slot {slot} handed out as slot {self._held}")
                yield batch
        finally:
            self._stop.set()
            while self._thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    results.get(timeout=0.1)
                except queue.Empty:
                    pass
            self._thread.join()
            self._thread = None

    def _produce(self, chunks: list[list[str]], results: queue.Queue[Any]) -> None:
        def put(item: Any) -> bool:
            while not self._stop.is_set():
                try:
                    results.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            with self._cp.cuda.Device(self.device_id):
                for k, chunk in enumerate(chunks):
                    slot = k % self.slots
                    with self._ring:
                        if slot == self._held or slot in self._queued:
                            raise RuntimeError(f"decode ring: slot {slot} is still in use (held {self._held})")
                        self._queued.append(slot)
                    if self._stop.is_set() or not put((slot, self._one(chunk, slot))):
                        return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    def _one(self, chunk: list[str], slot: int) -> Batch:
        cp = self._cp
        decoded = self._decoder.decode(chunk, cuda_stream=self._stream.ptr)
        ok: list[int] = []
        errors: dict[int, str] = {}
        sources: list[Any] = []
        u8 = self._u8[slot]
        with self._stream:
            for i, d in enumerate(decoded):
                if d.error is not None:
                    errors[i] = d.error
                    continue
                sources.append(cp.asarray(d.image) if d.image is not None else cp.asarray(d.pixels))
                ok.append(i)
        images: Any = None
        if ok:
            self._resizer.batch_into(sources, u8)  # one launch per pass per source size
            images = u8[: len(ok)]
            if self._f32 is not None:
                images = self._f32[slot][: len(ok)]
                self._resizer.normalise(u8[: len(ok)], images)
        # The consumer's engine runs on its own stream: the batch must be complete first.
        self._stream.synchronize()
        return Batch(chunk, images, ok, errors)
