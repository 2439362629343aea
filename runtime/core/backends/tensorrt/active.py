"""What exists while a TensorRT runner is active: the deserialised engine's lanes, its
host buffers, and inference through them.

The runner (runner.py) checks the engine and deserialises it; it then opens one
ActiveEngine, which the runner's inference calls go to, and closes it on deactivate().
Beside this file: the lanes (lanes.py), the double-buffered copy/execute schedule
(schedule.py), one chunk's launch and its CUDA graph (launch.py), and what the engine says
about itself (engine.py). Importing the runner loads none of them; activating it does.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ...dlpack import dlpack_device, from_dlpack, is_gpu
from ...errors import UserError
from ...manifest import INPUT_NAME, InputSpec
from ...runner import check_input
from ...tensorrt_options import TensorRTOptions
from ..cuda import CudaApi
from ..profiles import ProfileSet
from .engine import FLOAT32_BYTES, EngineRun, check_io, profile_shapes
from .lanes import InferRequest, Lane, LanePool
from .schedule import Schedule


class ActiveEngine:
    """One deserialised engine's lanes and host buffers on the runner's device."""

    def __init__(
        self,
        model_file: Path,
        options: TensorRTOptions,
        cuda: CudaApi,
        engine: Any,
        trt_module: Any,
        specs: tuple[InputSpec | None, InputSpec | None],
    ) -> None:
        """`specs`: the input model.json and the sidecar say the engine takes (None: not said)."""
        self.model_file, self.options, self.cuda, self.engine = model_file, options, cuda, engine
        io = check_io(model_file, engine, trt_module, *specs)
        self.input_spec, self.num_classes = io.input_spec, io.num_classes
        self.profiles = ProfileSet.from_shapes(
            [profile_shapes(model_file, engine, i) for i in range(engine.num_optimization_profiles)]
        )
        self.in_bytes = self.profiles.max_elements * io.in_itemsize
        out_bytes = self.profiles.max_batch * self.num_classes * FLOAT32_BYTES
        self.run = EngineRun(model_file, self.profiles, self.num_classes, io.in_itemsize, options.cuda_graph, trt_module.Dims)
        self.lanes = LanePool(model_file)
        self._host_buffers: list[tuple[int, int, weakref.finalize]] = []  # owned by their arrays
        self.lanes.open(engine, cuda, options.device, self.in_bytes, out_bytes)

    def close(self) -> None:
        """Wait for running calls and free every lane (host buffers belong to their arrays)."""
        self.lanes.close(self.cuda)

    # -- host memory --------------------------------------------------------------------
    def host_buffer(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """Page-locked host memory that the returned array owns (see TensorRTRunner.host_buffer)."""
        nbytes = int(np.prod(shape)) * dtype.itemsize
        size = max(nbytes, 1)
        self.cuda.set_device(self.options.device)  # page-locked for this device's context
        ptr, _ = self.cuda.malloc_host(size)
        owner = (ctypes.c_uint8 * size).from_address(ptr)  # numpy's base: alive while any view is
        freed = weakref.finalize(owner, self.cuda.free_host, ptr)
        freed.atexit = False  # at exit the CUDA runtime may be gone; the process frees it anyway
        self._host_buffers = [b for b in self._host_buffers if b[2].alive] + [(ptr, size, freed)]
        return np.frombuffer(memoryview(owner), np.uint8)[:nbytes].view(dtype).reshape(shape)

    def _is_pinned(self, array: np.ndarray) -> bool:
        if not array.flags.c_contiguous:
            return False
        start = int(array.ctypes.data)
        end = start + int(array.nbytes)
        return any(ptr <= start and end <= ptr + size and freed.alive for ptr, size, freed in self._host_buffers)

    # -- inference ------------------------------------------------------------------------
    def infer_host(self, images: np.ndarray) -> np.ndarray:
        return self._run_batches([images], self._host_batch)[0]

    def infer_device(self, images: Any) -> np.ndarray:
        return self._run_batches([images], self._device_batch)[0]

    def infer_batches(self, batches: Iterable[Any]) -> Generator[np.ndarray, None, None]:
        lane = self.lanes.checkout()
        try:
            schedule = Schedule(self.run, self.cuda, lane)
            previous: InferRequest | None = None
            for images in batches:
                batch = self._prepare(images, lane)
                schedule.submit(batch)
                schedule.release_inputs()  # the caller may now refill this batch's memory
                if previous is not None:
                    schedule.finish(previous)
                    yield from self.lanes.parked(lane, previous.out)
                previous = batch
            if previous is not None:
                schedule.finish(previous)
                yield from self.lanes.parked(lane, previous.out)
        finally:
            self.lanes.end(lane)

    def _run_batches(self, items: list[Any], prepare: Callable[[Any, Lane], InferRequest]) -> list[np.ndarray]:
        lane = self.lanes.checkout()
        try:
            schedule = Schedule(self.run, self.cuda, lane)
            batches = [prepare(x, lane) for x in items]
            for b in batches:
                schedule.submit(b)
            for b in batches:
                schedule.finish(b)
            return [b.out for b in batches]
        finally:
            self.lanes.end(lane)

    def _prepare(self, images: Any, lane: Lane) -> InferRequest:
        """One item of `infer_batches`, checked as `infer` checks its input."""
        device = dlpack_device(images)
        if is_gpu(device):
            return self._device_batch(images, lane)
        host = np.from_dlpack(images) if device is not None and not isinstance(images, np.ndarray) else images
        if not isinstance(host, np.ndarray):
            raise UserError(
                f"input '{INPUT_NAME}' | got a {type(images).__name__} | expected a numpy array or a DLPack tensor"
            )
        check_input(host.shape, str(host.dtype), self.input_spec)
        return self._host_batch(host, lane)

    def _host_batch(self, images: np.ndarray, lane: Lane) -> InferRequest:
        out = np.empty((images.shape[0], self.num_classes), np.float32)
        return InferRequest(out, 0, images, self._is_pinned(images))

    def _device_batch(self, images: Any, lane: Lane) -> InferRequest:
        # The device first: the stream handed to __dlpack__ is this runner's device's, which
        # a producer on another device must not be asked to wait on.
        device = dlpack_device(images)
        if device is not None and is_gpu(device) and device[1] != self.options.device:
            raise UserError(
                f"input '{INPUT_NAME}' | got a tensor on CUDA device {device[1]} | this runner uses device "
                f"{self.options.device}"
            )
        view = from_dlpack(images, lane.h2d)
        check_input(view.shape, view.dtype, self.input_spec)
        if not view.contiguous:
            raise UserError(
                f"input '{INPUT_NAME}' | got a strided GPU tensor | expected a C-contiguous one (.contiguous())"
            )
        out = np.empty((view.shape[0], self.num_classes), np.float32)
        return InferRequest(out, 0, view, False)
