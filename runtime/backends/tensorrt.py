"""TensorRT backend (both flavours): one deserialised engine, an execution context per
concurrent caller, and copies that overlap compute.

Life cycle (Polygraphy's): `activate()` checks the sidecar, deserialises the engine once
and makes the first lane; `infer()` runs; `deactivate()` waits for running calls and
frees everything.

Lanes. A lane is one execution context with its own three streams (host-to-device,
execute, device-to-host) and two slots of buffers (pinned host and device, input and
output). Each call to `infer` takes a free lane, or makes one, and gives it back when
done; so N threads sharing a runner run N contexts of the one engine in parallel, with
one copy of the weights on the GPU.

Double buffering. A batch is cut into chunks the chosen profile can run (ProfileSet:
larger batches split, a short last chunk padded). Chunk i+1 is staged into the other
slot and copied to the GPU while chunk i executes; its logits come back on the third
stream while chunk i+1 runs. Events order the streams; the host waits only for a slot it
is about to reuse. `infer_batches` carries the same pipeline across successive batches.

CUDA graphs (`cuda_graph=True`): the first run of each (profile, shape, slot) is
executed normally, then captured; later runs of it replay the graph, which skips
TensorRT's per-launch host work. Capture binds the slot's device buffers, so GPU input
is copied into the slot first instead of being read in place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..artifacts import MANIFEST_NAME
from ..engine_meta import EngineMeta, check_device, check_library, check_provenance, read_sidecar
from ..errors import UserError
from ..flavours import TENSORRT_RTX, default_flavour, import_flavour
from ..manifest import FLOAT_INPUT, INPUT_NAME, OUTPUT_NAME, UINT8_INPUT, InputSpec, find_manifest
from ..runner import Runner, check_input
from .cuda import CudaApi, default_cuda
from .dlpack import DeviceArray, dlpack_device, from_dlpack, is_gpu
from .profiles import Chunk, ProfileRange, ProfileSet

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

FLOAT32_BYTES = 4
# TensorRT's I/O data types this project's graphs use, by name: (numpy dtype, bytes).
IO_TYPES = {"FLOAT": (FLOAT_INPUT, 4), "UINT8": (UINT8_INPUT, 1)}


@dataclass(frozen=True)
class TensorRTOptions:
    cuda_graph: bool = False  # capture each input shape's execution into a CUDA graph
    allow_missing_sidecar: bool = False  # run an engine with no .engine.json (trtexec), with a warning
    device: int = 0  # CUDA device index (after CUDA_VISIBLE_DEVICES)


class _Resources:
    """What a lane allocated, freed in reverse order, each exactly once."""

    def __init__(self) -> None:
        self._items: list[tuple[Callable[[int], None], int]] = []

    def add(self, free: Callable[[int], None], handle: int) -> int:
        self._items.append((free, handle))
        return handle

    def release(self) -> None:
        while self._items:
            free, handle = self._items.pop()
            free(handle)


@dataclass
class _Slot:
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
    task: _Task | None = None


@dataclass
class _Batch:
    """One caller's batch on its way through a lane."""

    out: np.ndarray  # [N, classes] float32, filled as chunks finish
    pending: int  # chunks not yet finished
    source: np.ndarray | DeviceArray
    pinned: bool  # host source in page-locked memory this runner owns: copied without staging


@dataclass
class _Task:
    batch: _Batch
    chunk: Chunk
    profile: ProfileRange


@dataclass
class _Lane:
    context: Any
    h2d: int
    compute: int
    d2h: int
    slots: list[_Slot]
    resources: _Resources
    profile: int = 0
    shape: tuple[int, ...] | None = None
    graphs: dict[tuple[int, tuple[int, ...], int], int] = field(default_factory=dict)
    next_slot: int = 0
    parked: bool = False  # held by an infer_batches generator suspended at a yield
    reclaimed: bool = False  # freed by deactivate() while parked: its generator must not touch it


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(
        self, engine_file: str | Path, options: TensorRTOptions | None = None, cuda: CudaApi | None = None
    ) -> None:
        super().__init__(engine_file)
        self.options = options or TensorRTOptions()
        self._cuda_override = cuda
        self._cond = threading.Condition()
        self._free: list[_Lane] = []
        self._lanes: list[_Lane] = []
        self._busy = 0
        self._closing = False
        self._pinned: list[tuple[int, int, bool]] = []  # (pointer, bytes, owned: cudaMallocHost vs registered)
        self.deserialisations = 0  # how many times this runner deserialised its engine (one, per activation)

    # -- life cycle -------------------------------------------------------------------
    def _activate(self) -> None:
        if not self.model_file.is_file():
            raise UserError(f"{self.model_file}: no such file")
        self._closing = False
        self.meta: EngineMeta | None = read_sidecar(self.model_file, self.options.allow_missing_sidecar)
        flavour = self.meta.flavour if self.meta else default_flavour()
        self.backend = flavour
        try:
            self.cuda: CudaApi = self._cuda_override or default_cuda()
        except UserError as exc:  # no cuda-python: say what the engine needs, not only what is missing
            library = "TensorRT-RTX" if flavour == TENSORRT_RTX else "TensorRT"
            raise UserError(f"{self.model_file}: a {library} engine runs only on an NVIDIA GPU, via cuda-python; {exc}") from None
        gpu = self.cuda.device(self.options.device) if self.cuda.device_count() > 0 else None
        manifest = find_manifest(self.model_file)
        if self.meta is not None:
            # Everything the sidecar can tell is checked before the library is imported.
            check_device(self.meta, self.model_file, gpu)
            if manifest is not None:
                check_provenance(self.meta, self.model_file, manifest)
        elif gpu is None:
            raise UserError(
                f"{self.model_file}: a TensorRT engine runs only on an NVIDIA GPU, and this machine has none"
            )
        trt_module = import_flavour(flavour)
        self._trt: ModuleType = trt_module
        if self.meta is not None:
            check_library(self.meta, self.model_file, str(getattr(trt_module, "__version__", "unknown")))
        self.cuda.set_device(self.options.device)
        self.engine: trt.ICudaEngine = self._deserialise(trt_module)
        self._check_io(trt_module, manifest.input_spec if manifest else None)
        self.profiles = ProfileSet.from_shapes(
            [self._profile_shapes(i) for i in range(self.engine.num_optimization_profiles)]
        )
        self._in_bytes = self.profiles.max_elements * self._in_itemsize
        self._out_bytes = self.profiles.max_batch * self.num_classes * FLOAT32_BYTES
        self._free.append(self._new_lane())  # fail now, not on the first infer, if memory is short
        log.info(
            "%s engine %s: %d profile(s), %s input, buffers 2 x %.1f MiB per context%s",
            flavour,
            self.model_file.name,
            len(self.profiles.ranges),
            self.input_spec.dtype,
            self._in_bytes / 2**20,
            ", CUDA graphs" if self.options.cuda_graph else "",
        )

    def _deserialise(self, trt_module: ModuleType) -> trt.ICudaEngine:
        self._trt_logger = trt_module.Logger(trt_module.Logger.WARNING)
        self._runtime: trt.Runtime = trt_module.Runtime(self._trt_logger)
        if self.meta is None or self.meta.version_compatible:
            # A version-compatible plan carries its own lean runtime, host code TensorRT runs
            # only when told to. Our sidecar says the build asked for it; without a sidecar
            # the user has vouched for the file by passing --no-sidecar.
            self._runtime.engine_host_code_allowed = True
        data = self.model_file.read_bytes()
        validity = getattr(self._runtime, "get_engine_validity", None)
        if validity is not None:
            self._check_validity(trt_module, *validity(data))
        engine = self._runtime.deserialize_cuda_engine(data)
        self.deserialisations += 1
        if engine is None:
            raise UserError(
                f"{self.model_file}: {self.backend} could not deserialise it (corrupt file, or built by another "
                "library version or for another GPU than its sidecar says); its log above says why"
            )
        return engine

    def _check_validity(self, trt_module: ModuleType, validity: Any, diagnostics: Any) -> None:
        """TensorRT-RTX's own pre-flight check of a serialised engine."""
        name = getattr(validity, "name", str(validity))
        if name == "VALID":
            return
        flags = int(diagnostics)
        enum = getattr(trt_module, "EngineInvalidityDiagnostics", None)
        reasons = [m for m, v in (enum.__members__.items() if enum else []) if flags & int(v)]
        if not reasons:
            reasons = ["no reason given; the library's log above says why"]
        if name == "SUBOPTIMAL":
            log.warning("%s: the library says this engine is suboptimal here (%s)", self.model_file, ", ".join(reasons))
            return
        raise UserError(f"{self.model_file}: {self.backend} says this engine cannot run here: {', '.join(reasons)}")

    def _deactivate(self) -> None:
        """Free what exists: also called on a runner whose activation failed part-way."""
        with self._cond:
            self._closing = True
            # A lane parked in a suspended infer_batches generator (one its caller stopped
            # iterating but still holds) would never come back: reclaim it instead of waiting.
            while self._busy > sum(lane.parked for lane in self._lanes):
                self._cond.wait()
            lanes, self._lanes, self._free = self._lanes, [], []
            for lane in lanes:
                if lane.parked:
                    lane.reclaimed = True
                    self._busy -= 1
        cuda = self.__dict__.get("cuda")
        for lane in lanes:
            if cuda is not None:
                for graph in lane.graphs.values():
                    cuda.graph_destroy(graph)
            lane.graphs.clear()
            lane.resources.release()
            lane.context = None
        for ptr, _, owned in reversed(self._pinned):
            if cuda is not None:
                (cuda.free_host if owned else cuda.host_unregister)(ptr)
        self._pinned = []
        for name in ("engine", "_runtime"):
            self.__dict__.pop(name, None)

    # -- engine description -------------------------------------------------------------
    def _check_io(self, trt_module: ModuleType, manifest_spec: InputSpec | None) -> None:
        tm = trt_module.TensorIOMode
        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        if names != {INPUT_NAME, OUTPUT_NAME}:
            raise UserError(
                f"{self.model_file}: I/O tensors {sorted(names)} | expected ['{INPUT_NAME}', '{OUTPUT_NAME}']"
            )
        for name, mode in ((INPUT_NAME, tm.INPUT), (OUTPUT_NAME, tm.OUTPUT)):
            if self.engine.get_tensor_mode(name) != mode:
                raise UserError(f"{self.model_file}: tensor '{name}' is not an engine {mode.name.lower()}")
        in_type = self.engine.get_tensor_dtype(INPUT_NAME).name
        out_type = self.engine.get_tensor_dtype(OUTPUT_NAME).name
        if in_type not in IO_TYPES:
            raise UserError(f"{self.model_file}: input '{INPUT_NAME}' is {in_type} | expected FLOAT or UINT8")
        if out_type != "FLOAT":
            raise UserError(f"{self.model_file}: output '{OUTPUT_NAME}' is {out_type} | expected FLOAT")
        dtype, self._in_itemsize = IO_TYPES[in_type]
        self.input_spec = InputSpec(dtype)
        for where, spec in ((MANIFEST_NAME, manifest_spec), ("its sidecar", self._sidecar_spec())):
            if spec is not None and spec.dtype != dtype:
                raise UserError(
                    f"{self.model_file}: input '{INPUT_NAME}' is {in_type} ({dtype}), but {where} says {spec.dtype}; "
                    "the engine and its model files come from different exports"
                )
        self.num_classes = int(self.engine.get_tensor_shape(OUTPUT_NAME)[-1])
        if self.num_classes <= 0:
            raise UserError(f"{self.model_file}: output '{OUTPUT_NAME}' has no static class dimension")

    def _sidecar_spec(self) -> InputSpec | None:
        return InputSpec(self.meta.input_dtype) if self.meta is not None else None

    def _profile_shapes(self, index: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        shapes = self.engine.get_tensor_profile_shape(INPUT_NAME, index)
        if len(shapes) != 3:
            raise UserError(f"{self.model_file}: profile {index} has no shapes for input '{INPUT_NAME}'")
        # trt.Dims is indexable but not iterable in the 10.x stubs
        lo, opt, hi = (tuple(int(d[i]) for i in range(len(d))) for d in shapes)
        return lo, opt, hi

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return self.profiles.accepts(tuple(shape))

    def describe(self) -> str:
        return f"{self.backend}:{self.model_file.name}" + ("+graph" if self.options.cuda_graph else "")

    # -- lanes ----------------------------------------------------------------------------
    def _new_lane(self) -> _Lane:
        cuda, res = self.cuda, _Resources()
        try:
            context = self.engine.create_execution_context()
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
                slots.append(_Slot(d_in, d_out, h_in_ptr, h_in, h_out_ptr, h_out, ev_in, ev_exec, ev_out, index=i))
        except BaseException:
            res.release()
            raise
        lane = _Lane(context, h2d, compute, d2h, slots=slots, resources=res)
        with self._cond:
            self._lanes.append(lane)
        return lane

    def _checkout(self) -> _Lane:
        with self._cond:
            if self._closing:
                raise UserError(f"{self.model_file}: the runner is being deactivated")
            lane = self._free.pop() if self._free else None
            self._busy += 1
        if lane is None:
            try:
                lane = self._new_lane()
            except BaseException:
                self._checkin(None)
                raise
        self.cuda.set_device(self.options.device)  # the current device is per thread
        return lane

    def _checkin(self, lane: _Lane | None) -> None:
        with self._cond:
            if lane is not None:
                self._free.append(lane)
            self._busy -= 1
            self._cond.notify_all()

    @property
    def contexts(self) -> int:
        """Execution contexts made so far (one per concurrent caller, at most)."""
        return len(self._lanes)

    # -- host memory --------------------------------------------------------------------
    def host_buffer(self, shape: tuple[int, ...], dtype: str | None = None) -> np.ndarray:
        """Page-locked host memory, freed at deactivate(); `infer` copies from it to the GPU
        directly (no staging copy). Fill it with a batch, call `infer` on it or a slice."""
        self._require_active("host_buffer")
        dt = np.dtype(dtype or self.input_spec.dtype)
        nbytes = int(np.prod(shape)) * dt.itemsize
        ptr, view = self.cuda.malloc_host(max(nbytes, 1))
        self._pinned.append((ptr, max(nbytes, 1), True))
        return view[:nbytes].view(dt).reshape(shape)

    def pin(self, array: np.ndarray) -> np.ndarray:
        """Page-lock an existing C-contiguous array (shared memory filled by worker
        processes, say) until deactivate(), so `infer` copies from it without staging."""
        self._require_active("pin")
        if not array.flags.c_contiguous or array.nbytes == 0:
            raise UserError("pin: expected a non-empty C-contiguous array")
        self.cuda.host_register(int(array.ctypes.data), int(array.nbytes))
        self._pinned.append((int(array.ctypes.data), int(array.nbytes), False))
        return array

    def _is_pinned(self, array: np.ndarray) -> bool:
        if not array.flags.c_contiguous:
            return False
        start = int(array.ctypes.data)
        end = start + int(array.nbytes)
        return any(ptr <= start and end <= ptr + size for ptr, size, _ in self._pinned)

    # -- inference ------------------------------------------------------------------------
    def _infer(self, images: np.ndarray) -> np.ndarray:
        return self._run_batches([images], self._host_batch)[0]

    def _infer_device(self, images: Any) -> np.ndarray:
        return self._run_batches([images], self._device_batch)[0]

    def infer_batches(self, batches: Iterable[Any]) -> Generator[np.ndarray, None, None]:
        self._require_active()
        lane = self._checkout()
        try:
            pipe = _Pipeline(self, lane)
            previous: _Batch | None = None
            for images in batches:
                batch = self._prepare(images, lane)
                pipe.submit(batch)
                pipe.release_inputs()  # the caller may now refill this batch's memory
                if previous is not None:
                    pipe.finish(previous)
                    yield from self._parked(lane, previous.out)
                previous = batch
            if previous is not None:
                pipe.finish(previous)
                yield from self._parked(lane, previous.out)
        finally:
            self._end(lane)

    def _parked(self, lane: _Lane, out: np.ndarray) -> Iterator[np.ndarray]:
        """Yield `out` with `lane` marked parked, so deactivate() need not wait for a
        caller that never resumes; a generator resumed after that raises UserError."""
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

    def _run_batches(self, items: list[Any], prepare: Callable[[Any, _Lane], _Batch]) -> list[np.ndarray]:
        lane = self._checkout()
        try:
            pipe = _Pipeline(self, lane)
            batches = [prepare(x, lane) for x in items]
            for b in batches:
                pipe.submit(b)
            for b in batches:
                pipe.finish(b)
            return [b.out for b in batches]
        finally:
            self._end(lane)

    def _end(self, lane: _Lane) -> None:
        """Return the lane; after an error, first let its streams drain and forget its tasks."""
        with self._cond:
            if lane.reclaimed:
                return  # deactivate() freed it and no longer counts it as busy
        try:
            if any(s.task is not None for s in lane.slots):
                for stream in (lane.h2d, lane.compute, lane.d2h):
                    self.cuda.synchronize(stream)
                for s in lane.slots:
                    s.task = None
        finally:
            self._checkin(lane)

    def _prepare(self, images: Any, lane: _Lane) -> _Batch:
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

    def _host_batch(self, images: np.ndarray, lane: _Lane) -> _Batch:
        out = np.empty((images.shape[0], self.num_classes), np.float32)
        return _Batch(out, 0, images, self._is_pinned(images))

    def _device_batch(self, images: Any, lane: _Lane) -> _Batch:
        view = from_dlpack(images, lane.h2d)
        check_input(view.shape, view.dtype, self.input_spec)
        if not view.contiguous:
            raise UserError(
                f"input '{INPUT_NAME}' | got a strided GPU tensor | expected a C-contiguous one (.contiguous())"
            )
        if view.device_id != self.options.device:
            raise UserError(
                f"input '{INPUT_NAME}' | got a tensor on CUDA device {view.device_id} | this runner uses device "
                f"{self.options.device}"
            )
        out = np.empty((view.shape[0], self.num_classes), np.float32)
        return _Batch(out, 0, view, False)


class _Pipeline:
    """Chunks through the two slots of one lane; see the module docstring."""

    def __init__(self, runner: TensorRTRunner, lane: _Lane) -> None:
        self.r, self.lane, self.cuda = runner, lane, runner.cuda
        self._last: _Slot | None = None

    def submit(self, batch: _Batch) -> None:
        shape = tuple(int(d) for d in batch.source.shape)
        profile = self.r.profiles.choose(shape)  # names the caller's shape, not a chunk's
        chunks = ProfileSet.chunks(shape[0], profile)
        batch.pending = len(chunks)
        for chunk in chunks:
            slot = self.lane.slots[self.lane.next_slot]
            self.lane.next_slot ^= 1
            if slot.task is not None:
                self._finish_slot(slot)
            self._enqueue(_Task(batch, chunk, profile), slot)

    def release_inputs(self) -> None:
        if self._last is not None:
            self.cuda.event_synchronize(self._last.ev_in)

    def finish(self, batch: _Batch) -> None:
        for slot in self._in_flight_order():
            if batch.pending == 0:
                break
            if slot.task is not None and slot.task.batch is batch:
                self._finish_slot(slot)
        if batch.pending:
            raise RuntimeError("internal: a batch's chunks were lost in the pipeline")
        if isinstance(batch.source, DeviceArray):
            batch.source.release()

    def _in_flight_order(self) -> list[_Slot]:
        # The slot that was filled first is the one the next submit would reuse.
        nxt = self.lane.next_slot
        return [self.lane.slots[nxt], self.lane.slots[nxt ^ 1]]

    def _finish_slot(self, slot: _Slot) -> None:
        task = slot.task
        assert task is not None
        self.cuda.event_synchronize(slot.ev_out)
        n, classes = task.chunk.size, self.r.num_classes
        logits = slot.h_out[: n * classes * FLOAT32_BYTES].view(np.float32).reshape(n, classes)
        task.batch.out[task.chunk.start : task.chunk.stop] = logits
        task.batch.pending -= 1
        slot.task = None

    def _enqueue(self, task: _Task, slot: _Slot) -> None:
        r, cuda, lane = self.r, self.cuda, self.lane
        chunk, source = task.chunk, task.batch.source
        run_shape = (chunk.run, *tuple(int(d) for d in source.shape[1:]))
        per_image = int(np.prod(run_shape[1:])) * r._in_itemsize
        real, total = chunk.size * per_image, chunk.run * per_image
        slot.task = task
        self._last = slot
        graph = r.options.cuda_graph
        if isinstance(source, DeviceArray):
            src = source.ptr + chunk.start * per_image
            if not graph and not chunk.padded:
                input_ptr = src  # read in place: no copy at all
            else:
                cuda.dtod_async(slot.d_in, src, real, lane.h2d)
                if chunk.padded:
                    cuda.memset_async(slot.d_in + real, 0, total - real, lane.h2d)
                input_ptr = slot.d_in
        else:
            part = source[chunk.start : chunk.stop]
            if task.batch.pinned and not chunk.padded:
                cuda.htod_async(slot.d_in, int(part.ctypes.data), real, lane.h2d)
            else:
                staged = slot.h_in[:total].view(source.dtype).reshape(run_shape)
                np.copyto(staged[: chunk.size], part)
                if chunk.padded:
                    staged[chunk.size :] = 0  # padding images: their logits are dropped
                cuda.htod_async(slot.d_in, slot.h_in_ptr, total, lane.h2d)
            input_ptr = slot.d_in
        cuda.event_record(slot.ev_in, lane.h2d)
        cuda.stream_wait_event(lane.compute, slot.ev_in)
        self._execute(task.profile, run_shape, input_ptr, slot)
        cuda.event_record(slot.ev_exec, lane.compute)
        cuda.stream_wait_event(lane.d2h, slot.ev_exec)
        cuda.dtoh_async(slot.h_out_ptr, slot.d_out, chunk.size * r.num_classes * FLOAT32_BYTES, lane.d2h)
        cuda.event_record(slot.ev_out, lane.d2h)

    def _execute(self, profile: ProfileRange, shape: tuple[int, ...], input_ptr: int, slot: _Slot) -> None:
        r, lane, ctx = self.r, self.lane, self.lane.context
        if lane.profile != profile.index:
            if not ctx.set_optimization_profile_async(profile.index, lane.compute):
                raise UserError(f"{r.model_file}: TensorRT refused optimization profile {profile.index}")
            lane.profile = profile.index
            lane.shape = None
        if lane.shape != shape:
            if not ctx.set_input_shape(INPUT_NAME, r._trt.Dims(list(shape))):
                raise UserError(
                    f"input '{INPUT_NAME}' | run shape {shape} | engine profile {profile.index} allows "
                    f"{profile.describe()}"
                )
            lane.shape = shape
        key = (profile.index, shape, slot.index)
        graph = lane.graphs.get(key) if r.options.cuda_graph else None
        if graph is not None:
            self.cuda.graph_launch(graph, lane.compute)
            return
        for name, ptr in ((INPUT_NAME, input_ptr), (OUTPUT_NAME, slot.d_out)):
            if not ctx.set_tensor_address(name, ptr):
                raise UserError(f"TensorRT refused the device address for '{name}'")
        if not ctx.execute_async_v3(lane.compute):
            raise UserError(f"TensorRT execution failed for input shape {shape}")
        if r.options.cuda_graph:
            # The run above has applied the new shape; now record the same launch.
            self.cuda.begin_capture(lane.compute)
            try:
                ok = ctx.execute_async_v3(lane.compute)
            finally:
                captured = self.cuda.end_capture(lane.compute)
            if not ok:
                self.cuda.graph_destroy(captured)
                raise UserError(
                    f"{r.model_file}: TensorRT could not be captured into a CUDA graph for shape {shape}; "
                    "run without --cuda-graph"
                )
            lane.graphs[key] = captured
