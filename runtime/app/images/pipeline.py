"""The one decode-and-batch pipeline: image files -> the model's input, batch by batch.

`classify`, `evaluate`, `bench --images` and calibration all read images through here,
so decoding rules (exact decode, EXIF orientation, bad files reported with their reason)
hold everywhere alike.

- `ImageTransform` (runtime.app.images.transform) turns one file into one input sample.
- `HostPipeline` decodes in worker processes. They are started with the `spawn` method,
  so they never inherit CUDA or ONNX Runtime state, and should be started before the
  model is loaded. Workers write each sample straight into a ring of shared batch
  slots (bounded: memory stays flat however many images there are); each finished batch
  is copied into one preallocated output array (a caller may pass its own, e.g. a
  pinned host buffer) and handed out in input order.

Ctrl-C: the workers ignore SIGINT, the main process gets it, stops the workers and
re-raises, so the command ends with one line instead of a traceback per worker.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import UserError
from .transform import Batch, ImageTransform, check_buffer, decode_into

log = logging.getLogger(__name__)

# How long the main process waits on the workers before checking that they are alive.
_POLL_SECONDS = 1.0


class HostPipeline:
    """Decode and preprocess image files in `workers` processes (0: in this process).

    Use as a context manager; start it before loading the model so the workers begin
    with a clean process. `batches(paths)` may be called repeatedly (one pass at a time).
    """

    def __init__(self, transform: ImageTransform, batch: int, workers: int, prefetch: int | None = None) -> None:
        if batch < 1:
            raise UserError(f"--batch must be at least 1, got {batch}")
        if workers < 0:
            raise UserError(f"--workers must be 0 or more, got {workers}")
        self.transform, self.batch, self.workers = transform, batch, workers
        # Enough slots that every worker has an image to work on while the consumer
        # holds one batch: memory is slots x batch x sample, whatever the image count.
        self.slots = prefetch or max(3, 1 + -(-2 * workers // batch) + 1)
        self._procs: list[Any] = []
        self._tasks: Any = None
        self._results: Any = None
        self._ring: np.ndarray | None = None
        self._broken = False

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> HostPipeline:
        if self.workers == 0 or self._procs:
            return self
        ctx = mp.get_context("spawn")
        sample = (self.batch, *self.transform.sample_shape)
        nbytes = self.slots * int(np.prod(sample)) * self.transform.dtype.itemsize
        shared = ctx.RawArray("b", nbytes)
        self._ring = np.frombuffer(shared, dtype=self.transform.dtype).reshape(self.slots, *sample)
        self._tasks, self._results = ctx.Queue(), ctx.Queue()
        args = (self._tasks, self._results, shared, (self.slots, *sample), self.transform)
        # Block SIGINT while the workers start, so that a Ctrl-C during their start-up
        # cannot interrupt them before they have chosen to ignore it.
        with _sigint_blocked():
            for _ in range(self.workers):
                proc = ctx.Process(target=_worker, args=args, daemon=True, name="convmixer-decode")
                proc.start()
                self._procs.append(proc)
        log.debug("started %d decode workers, %d batch slots of %s", self.workers, self.slots, sample)
        return self

    def close(self, abort: bool = False) -> None:
        """Stop the workers: politely after a complete pass, at once after a failure."""
        procs, self._procs = self._procs, []
        if not procs:
            return
        if abort or self._broken:
            for proc in procs:
                proc.terminate()
            # Nothing will read what is still queued; do not wait on it at exit.
            self._tasks.cancel_join_thread()
        else:
            for _ in procs:
                self._tasks.put(None)
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._tasks.close()
        self._results.close()

    def __enter__(self) -> HostPipeline:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(abort=exc_type is not None)

    # -- batches ------------------------------------------------------------------

    def batches(self, paths: Sequence[str | Path], out: np.ndarray | None = None) -> Iterator[Batch]:
        """Batches of `paths` in input order, each assembled into `out` (preallocated:
        [>= batch, *sample] of the transform's dtype; allocated once when None)."""
        if out is None:
            out = self.transform.empty_batch(self.batch)
        check_buffer(out, self.transform, self.batch)
        chunks = [[str(p) for p in paths[i : i + self.batch]] for i in range(0, len(paths), self.batch)]
        if self.workers == 0:
            for chunk in chunks:
                yield self._decode_here(chunk, out)
            return
        if self._broken or not self._procs:
            raise UserError("the decode workers are not running (start the pipeline, once per failure)")
        completed = False
        try:
            yield from self._from_workers(chunks, out)
            completed = True
        finally:
            if not completed:
                # Stopped early (an exception, Ctrl-C, or the consumer broke off): work
                # is still in flight, so this pipeline cannot serve another pass.
                self._broken = True
                self.close(abort=True)

    def _decode_here(self, chunk: list[str], out: np.ndarray) -> Batch:
        ok: list[int] = []
        errors: dict[int, str] = {}
        for i, path in enumerate(chunk):
            error = decode_into(self.transform, path, out[len(ok)])
            if error is None:
                ok.append(i)
            else:
                errors[i] = error
        return Batch(chunk, out[: len(ok)] if ok else None, ok, errors)

    def _from_workers(self, chunks: list[list[str]], out: np.ndarray) -> Iterator[Batch]:
        assert self._ring is not None
        remaining: dict[int, int] = {}
        errors: dict[int, dict[int, str]] = {}

        def submit(k: int) -> None:
            slot = k % self.slots
            remaining[k] = len(chunks[k])
            errors[k] = {}
            for row, path in enumerate(chunks[k]):
                self._tasks.put((k, slot, row, path))

        for k in range(min(self.slots, len(chunks))):
            submit(k)
        for k, chunk in enumerate(chunks):
            while remaining[k]:
                done_k, row, error = self._next_result(chunk)
                remaining[done_k] -= 1
                if error is not None:
                    errors[done_k][row] = error
            ok = [i for i in range(len(chunk)) if i not in errors[k]]
            slot = self._ring[k % self.slots]
            if len(ok) == len(chunk):
                out[: len(ok)] = slot[: len(ok)]
            else:
                for r, i in enumerate(ok):
                    out[r] = slot[i]
            batch = Batch(chunk, out[: len(ok)] if ok else None, ok, errors.pop(k))
            del remaining[k]
            # The slot is copied out: let the workers refill it before the consumer runs.
            if k + self.slots < len(chunks):
                submit(k + self.slots)
            yield batch

    def _next_result(self, chunk: list[str]) -> tuple[int, int, str | None]:
        while True:
            try:
                result: tuple[int, int, str | None] = self._results.get(timeout=_POLL_SECONDS)
                return result
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    self._broken = True
                    raise UserError(
                        f"a decode worker died (exit code {dead[0].exitcode}) while reading images "
                        f"from {chunk[0]} on; rerun with --workers 0 to find the file"
                    ) from None


@dataclass
class _sigint_blocked:
    """Block SIGINT in this thread for the duration (no-op where signals cannot be masked)."""

    previous: Any = None

    def __enter__(self) -> None:
        if hasattr(signal, "pthread_sigmask"):
            self.previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.previous)


def _worker(tasks: Any, results: Any, shared: Any, ring_shape: tuple[int, ...], transform: ImageTransform) -> None:
    """Decode loop of one worker process: (batch, slot, row, path) in, (batch, row, error) out."""
    # Ctrl-C reaches every process of the terminal's group; only the main process acts
    # on it (it stops the workers), so a worker never prints a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    ring = np.frombuffer(shared, dtype=transform.dtype).reshape(ring_shape)
    parent = mp.parent_process()
    while True:
        try:
            task = tasks.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return  # the main process is gone (killed): nobody wants the results
            continue
        if task is None:
            return
        k, slot, row, path = task
        results.put((k, row, decode_into(transform, path, ring[slot, row])))


def default_workers() -> int:
    """One decode process per CPU the process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
