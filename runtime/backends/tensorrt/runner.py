"""TensorRT backend (both flavours): one deserialised engine, an execution context per
concurrent caller, and copies that overlap compute.

Life cycle (Polygraphy's): `activate()` checks the sidecar, deserialises the engine once
and makes the first lane; `infer()` runs; `deactivate()` waits for running calls and
frees everything. Beside this file: the lanes (lanes.py), the double-buffered copy and
execute pipeline (pipeline.py), one chunk's launch and its CUDA graph (launch.py), and
what the engine says about itself (engine.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ...dlpack import dlpack_device, from_dlpack, is_gpu
from ...engine_meta import EngineMeta, check_device, check_library, check_provenance, read_sidecar
from ...errors import UserError
from ...flavours import TENSORRT_RTX, default_flavour, import_flavour
from ...manifest import INPUT_NAME, InputSpec, find_manifest
from ...runner import Runner, check_input
from ..cuda import CudaApi, default_cuda
from ..profiles import ProfileSet
from .engine import FLOAT32_BYTES, EngineRun, check_io, check_validity, profile_shapes
from .lanes import Batch, Lane, LanePool
from .pipeline import Pipeline

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorRTOptions:
    cuda_graph: bool = False  # capture each input shape's execution into a CUDA graph
    allow_missing_sidecar: bool = False  # run an engine with no .engine.json (trtexec), with a warning
    device: int = 0  # CUDA device index (after CUDA_VISIBLE_DEVICES)


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(
        self, engine_file: str | Path, options: TensorRTOptions | None = None, cuda: CudaApi | None = None
    ) -> None:
        super().__init__(engine_file)
        self.options = options or TensorRTOptions()
        self._cuda_override = cuda
        self._lanes = LanePool(self.model_file)
        self._pinned: list[tuple[int, int, bool]] = []  # (pointer, bytes, owned: cudaMallocHost vs registered)
        self.deserialisations = 0  # how many times this runner deserialised its engine (one, per activation)

    # -- life cycle -------------------------------------------------------------------
    def _activate(self) -> None:
        if not self.model_file.is_file():
            raise UserError(f"{self.model_file}: no such file")
        self.meta: EngineMeta | None = read_sidecar(self.model_file, self.options.allow_missing_sidecar)
        flavour = self.meta.flavour if self.meta else default_flavour()
        self.backend = flavour
        self.cuda: CudaApi = self._cuda_for(flavour)
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
        sidecar_spec = InputSpec(self.meta.input_dtype) if self.meta is not None else None
        io = check_io(self.model_file, self.engine, trt_module, manifest.input_spec if manifest else None, sidecar_spec)
        self.input_spec, self.num_classes = io.input_spec, io.num_classes
        self.profiles = ProfileSet.from_shapes(
            [profile_shapes(self.model_file, self.engine, i) for i in range(self.engine.num_optimization_profiles)]
        )
        self._in_bytes = self.profiles.max_elements * io.in_itemsize
        self._out_bytes = self.profiles.max_batch * self.num_classes * FLOAT32_BYTES
        self._run = EngineRun(
            self.model_file, self.profiles, self.num_classes, io.in_itemsize, self.options.cuda_graph, trt_module.Dims
        )
        self._lanes.open(self.engine, self.cuda, self.options.device, self._in_bytes, self._out_bytes)
        log.info(
            "%s engine %s: %d profile(s), %s input, buffers 2 x %.1f MiB per context%s",
            flavour,
            self.model_file.name,
            len(self.profiles.ranges),
            self.input_spec.dtype,
            self._in_bytes / 2**20,
            ", CUDA graphs" if self.options.cuda_graph else "",
        )

    def _cuda_for(self, flavour: str) -> CudaApi:
        try:
            return self._cuda_override or default_cuda()
        except UserError as exc:  # no cuda-python: say what the engine needs, not only what is missing
            library = "TensorRT-RTX" if flavour == TENSORRT_RTX else "TensorRT"
            raise UserError(
                f"{self.model_file}: a {library} engine runs only on an NVIDIA GPU, via cuda-python; {exc}"
            ) from None

    def check_requirements(self) -> None:
        """The file, its sidecar, cuda-python and the flavour's library, as `activate()`
        checks them, but without a GPU (a Ray driver may have none)."""
        super().check_requirements()
        meta = read_sidecar(self.model_file, self.options.allow_missing_sidecar)
        flavour = meta.flavour if meta else default_flavour()
        self._cuda_for(flavour)
        import_flavour(flavour)

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
            check_validity(self.model_file, self.backend, trt_module, *validity(data))
        engine = self._runtime.deserialize_cuda_engine(data)
        self.deserialisations += 1
        if engine is None:
            raise UserError(
                f"{self.model_file}: {self.backend} could not deserialise it (corrupt file, or built by another "
                "library version or for another GPU than its sidecar says); its log above says why"
            )
        return engine

    def _deactivate(self) -> None:
        """Free what exists: also called on a runner whose activation failed part-way."""
        cuda = self.__dict__.get("cuda")
        self._lanes.close(cuda)
        for ptr, _, owned in reversed(self._pinned):
            if cuda is not None:
                (cuda.free_host if owned else cuda.host_unregister)(ptr)
        self._pinned = []
        for name in ("engine", "_runtime"):
            self.__dict__.pop(name, None)

    # -- engine description -------------------------------------------------------------
    def output_classes(self) -> int | None:
        return self.num_classes

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return self.profiles.accepts(tuple(shape))

    def describe(self) -> str:
        return f"{self.backend}:{self.model_file.name}" + ("+graph" if self.options.cuda_graph else "")

    # -- lanes ----------------------------------------------------------------------------
    @property
    def contexts(self) -> int:
        """Execution contexts made so far (one per concurrent caller, at most)."""
        return len(self._lanes.lanes)

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
        lane = self._lanes.checkout()
        try:
            pipe = Pipeline(self._run, self.cuda, lane)
            previous: Batch | None = None
            for images in batches:
                batch = self._prepare(images, lane)
                pipe.submit(batch)
                pipe.release_inputs()  # the caller may now refill this batch's memory
                if previous is not None:
                    pipe.finish(previous)
                    yield from self._lanes.parked(lane, previous.out)
                previous = batch
            if previous is not None:
                pipe.finish(previous)
                yield from self._lanes.parked(lane, previous.out)
        finally:
            self._lanes.end(lane)

    def _run_batches(self, items: list[Any], prepare: Callable[[Any, Lane], Batch]) -> list[np.ndarray]:
        lane = self._lanes.checkout()
        try:
            pipe = Pipeline(self._run, self.cuda, lane)
            batches = [prepare(x, lane) for x in items]
            for b in batches:
                pipe.submit(b)
            for b in batches:
                pipe.finish(b)
            return [b.out for b in batches]
        finally:
            self._lanes.end(lane)

    def _prepare(self, images: Any, lane: Lane) -> Batch:
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

    def _host_batch(self, images: np.ndarray, lane: Lane) -> Batch:
        out = np.empty((images.shape[0], self.num_classes), np.float32)
        return Batch(out, 0, images, self._is_pinned(images))

    def _device_batch(self, images: Any, lane: Lane) -> Batch:
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
        return Batch(out, 0, view, False)
