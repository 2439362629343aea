"""Lanes: the execution contexts of one engine, lent to concurrent callers.

A lane is one execution context with its own three streams (host-to-device, execute,
device-to-host) and two slots of buffers (pinned host and device, input and output).
Each call to `infer` takes a free lane, or makes one, and gives it back when done; so N
threads sharing a runner run N contexts of the one engine in parallel, with one copy of
the weights on the GPU.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...dlpack import DeviceArray
from ...errors import UserError
from ..cuda import CudaApi
from ..profiles import Chunk, ProfileRange

log = logging.getLogger(__name__)
MAX_LANES = 8  # execution contexts per runner: concurrent callers past this wait for one
MAX_GRAPHS = 32  # CUDA graphs kept per lane (profile x shape x slot); the least recently used go


def release_after(res: Resources, error: BaseException) -> None:
    """Free `res` while `error` is on its way: a failed free is logged, never raised over it."""
    try:
        res.release()
    except Exception as cleanup:  # the original error is the one to report
        log.warning("freeing after %s also failed: %s", type(error).__name__, cleanup)


class Resources:
    """What a lane allocated, freed in reverse order, each exactly once."""

    def __init__(self) -> None:
        self._items: list[tuple[Callable[[int], None], int]] = []

    def add(self, free: Callable[[int], None], handle: int) -> int:
        self._items.append((free, handle))
        return handle

    def release(self) -> None:
        """Free everything, going on after a free that fails (after a fatal CUDA error every
        call fails; what can still be freed is), then raise the first error."""
        first: BaseException | None = None
        while self._items:
            free, handle = self._items.pop()
            try:
                free(handle)
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the rest are freed
                first = first or exc
        if first is not None:
            raise first


@dataclass
class Slot:
    d_in: int
    d_out: int
    h_in_ptr: int
    h_in: np.ndarray
    h_out_ptr: int
    h_out: np.ndarray
    ev_in: int
    ev_exec: int
    ev_out: int
    index: int
    task: Task | None = None


@dataclass
class InferRequest:
    """One caller's batch on its way through a lane."""

    out: np.ndarray  # [N, classes] float32, filled as chunks finish
    pending: int  # chunks not yet finished
    source: np.ndarray | DeviceArray
    pinned: bool  # host source in page-locked memory this runner owns: copied without staging


@dataclass
class Task:
    batch: InferRequest
    chunk: Chunk
    profile: ProfileRange


@dataclass
class Lane:
    context: Any
    h2d: int
    compute: int
    d2h: int
    slots: list[Slot]
    resources: Resources
    profile: int = 0
    shape: tuple[int, ...] | None = None
    graphs: OrderedDict[tuple[int, tuple[int, ...], int], int] = field(default_factory=OrderedDict)
    next_slot: int = 0
    parked: bool = False  # held by an infer_batches generator suspended at a yield
    reclaimed: bool = False  # freed by deactivate() while parked: its generator must not touch it


class LanePool:
    """The lanes of one runner: lent out by `checkout`, given back by `end`, freed by `close`."""

    def __init__(self, model_file: Path, limit: int = MAX_LANES) -> None:
        self.model_file, self.limit = model_file, limit
        self._cond = threading.Condition()
        self.free: list[Lane] = []
        self.lanes: list[Lane] = []
        self._busy = 0
        self._making = 0  # lanes being made (not yet in self.lanes)
        self.waiting = 0  # callers waiting for a lane because `limit` are lent out
        self._closing = False

    def open(self, engine: Any, cuda: CudaApi, device: int, in_bytes: int, out_bytes: int) -> None:
        """Make the first lane now, not on the first infer, so short memory fails here."""
        self._closing = False
        self._engine, self._cuda, self._device = engine, cuda, device
        self._in_bytes, self._out_bytes = in_bytes, out_bytes
        self.free.append(self._new_lane())

    def _new_lane(self) -> Lane:
        cuda, res = self._cuda, Resources()
        try:
            context = self._engine.create_execution_context()
            if context is None:
                raise UserError(
                    f"{self.model_file}: TensorRT could not create an execution context (out of GPU memory?)"
                )
            h2d, compute, d2h = (res.add(cuda.stream_destroy, cuda.stream_create()) for _ in range(3))
            slots = []
            for i in range(2):
                d_in = res.add(cuda.free, cuda.malloc(self._in_bytes))
                d_out = res.add(cuda.free, cuda.malloc(self._out_bytes))
                h_in_ptr, h_in = cuda.malloc_host(self._in_bytes)
                res.add(cuda.free_host, h_in_ptr)
                h_out_ptr, h_out = cuda.malloc_host(self._out_bytes)
                res.add(cuda.free_host, h_out_ptr)
                ev_in, ev_exec, ev_out = (res.add(cuda.event_destroy, cuda.event_create()) for _ in range(3))
                slots.append(Slot(d_in, d_out, h_in_ptr, h_in, h_out_ptr, h_out, ev_in, ev_exec, ev_out, index=i))
        except BaseException as exc:
            release_after(res, exc)
            raise
        lane = Lane(context, h2d, compute, d2h, slots=slots, resources=res)
        with self._cond:
            self.lanes.append(lane)
        return lane

    def checkout(self) -> Lane:
        with self._cond:
            # Bounded: past `limit` lanes a caller waits for one to come back rather than make
            # another context (each holds its activation memory and two slots of buffers).
            self.waiting += 1
            try:
                while not self._closing and not self.free and len(self.lanes) + self._making >= self.limit:
                    self._cond.wait()
            finally:
                self.waiting -= 1
            if self._closing:
                raise UserError(f"{self.model_file}: the runner is being deactivated")
            lane = self.free.pop() if self.free else None
            self._busy += 1
            self._making += lane is None
        # The current device is per thread: set it before anything is made on it (a new
        # lane's context, streams and buffers) or used (a lane another thread made).
        try:
            self._cuda.set_device(self._device)
        except BaseException:
            with self._cond:
                self._making -= lane is None
            self._checkin(lane)
            raise
        if lane is None:
            try:
                lane = self._new_lane()
            except BaseException:
                self._checkin(None)
                raise
            finally:
                with self._cond:
                    self._making -= 1
        return lane

    def _checkin(self, lane: Lane | None) -> None:
        with self._cond:
            if lane is not None:
                self.free.append(lane)
            self._busy -= 1
            self._cond.notify_all()

    def end(self, lane: Lane) -> None:
        """Return the lane; after an error, first let its streams drain and forget its tasks."""
        with self._cond:
            if lane.reclaimed:
                return  # close() freed it and no longer counts it as busy
        try:
            if any(s.task is not None for s in lane.slots):
                for stream in (lane.h2d, lane.compute, lane.d2h):
                    self._cuda.synchronize(stream)
                for s in lane.slots:
                    s.task = None
        finally:
            self._checkin(lane)

    def parked(self, lane: Lane, out: np.ndarray) -> Iterator[np.ndarray]:
        """Yield `out` with `lane` marked parked, so close() need not wait for a caller
        that never resumes; a generator resumed after that raises UserError."""
        with self._cond:
            lane.parked = True
        try:
            yield out
        finally:
            with self._cond:
                lane.parked = False
                reclaimed = lane.reclaimed
        if reclaimed:
            raise UserError(f"{self.model_file}: the runner was deactivated while infer_batches was paused")

    def close(self, cuda: CudaApi | None) -> None:
        """Wait for running calls, then free every lane (`cuda` None: nothing was allocated)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()  # callers waiting for a lane give up
            # A lane parked in a suspended infer_batches generator (one its caller stopped
            # iterating but still holds) would never come back: reclaim it instead of waiting.
            while self._busy > sum(lane.parked for lane in self.lanes):
                self._cond.wait()
            lanes, self.lanes, self.free = self.lanes, [], []
            for lane in lanes:
                if lane.parked:
                    lane.reclaimed = True
                    self._busy -= 1
        first: BaseException | None = None
        for lane in lanes:  # every lane is freed, even after one fails; the first error is raised
            res = Resources()
            if cuda is not None:
                for graph in lane.graphs.values():
                    res.add(cuda.graph_destroy, graph)
            lane.graphs.clear()
            try:
                res.release()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                first = first or exc
            try:
                lane.resources.release()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                first = first or exc
            lane.context = None
        if first is not None:
            raise first
