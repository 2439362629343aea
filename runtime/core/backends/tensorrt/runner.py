"""TensorRT backend (both flavours): one deserialised engine, an execution context per
concurrent caller, and copies that overlap compute.

Life cycle (Polygraphy's): `activate()` checks the sidecar, the GPU and the library,
deserialises the engine once and opens an ActiveEngine (active.py: its lanes, host
buffers and inference); `infer()` runs on it; `deactivate()` waits for running calls and
frees everything. Importing this module loads only the life cycle: what activation
needs (the sidecar's checks, CUDA, the engine's machinery) is imported by `activate()`.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import UserError
from ...runner import Runner
from ...tensorrt_options import TensorRTOptions

if TYPE_CHECKING:
    import tensorrt as trt

    from ...engine_meta import EngineMeta
    from ..cuda import CudaApi
    from .active import ActiveEngine
    from .lanes import LanePool

log = logging.getLogger(__name__)


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(
        self, engine_file: str | Path, options: TensorRTOptions | None = None, cuda: CudaApi | None = None
    ) -> None:
        super().__init__(engine_file)
        self.options = options or TensorRTOptions()
        self._cuda_override = cuda
        self._active_engine: ActiveEngine | None = None
        self.deserialisations = 0  # how many times this runner deserialised its engine (one, per activation)

    # -- life cycle -------------------------------------------------------------------
    def _activate(self) -> None:
        from ...engine_meta import check_device, check_engine_bytes, check_library, check_provenance, read_sidecar
        from ...flavours import TENSORRT_RTX, default_flavour, import_flavour
        from ...manifest import InputSpec, find_manifest
        from .active import ActiveEngine

        if not self.model_file.is_file():
            raise UserError(f"{self.model_file}: no such file")
        # The bytes checked against the sidecar, first of all, are the very bytes deserialised.
        self.meta: EngineMeta | None = read_sidecar(self.model_file, self.options.allow_missing_sidecar, verify=False)
        data = self.model_file.read_bytes()
        if self.meta is not None:
            check_engine_bytes(self.meta, self.model_file, data)
        flavour = self.meta.flavour if self.meta else default_flavour()
        self.backend = flavour
        if flavour == TENSORRT_RTX and self.options.cuda_graph:
            raise UserError(
                f"{self.model_file}: --cuda-graph is not supported for TensorRT-RTX engines (RTX chooses kernels "
                "at run time and needs its own capture rules); run without --cuda-graph"
            )
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
        self.engine: trt.ICudaEngine = self._deserialise(trt_module, data)
        del data
        specs = (manifest.input_spec if manifest else None, InputSpec(self.meta.input_dtype) if self.meta else None)
        active = ActiveEngine(self.model_file, self.options, self.cuda, self.engine, trt_module, specs)
        self._active_engine = active
        self.input_spec, self.num_classes, self.profiles = active.input_spec, active.num_classes, active.profiles
        log.info(
            "%s engine %s: %d profile(s), %s input, buffers 2 x %.1f MiB per context%s",
            flavour,
            self.model_file.name,
            len(self.profiles.ranges),
            self.input_spec.dtype,
            active.in_bytes / 2**20,
            ", CUDA graphs" if self.options.cuda_graph else "",
        )

    def _cuda_for(self, flavour: str) -> CudaApi:
        from ...flavours import TENSORRT_RTX
        from ..cuda import NO_GPU, default_cuda

        try:
            return self._cuda_override or default_cuda()
        except UserError as exc:  # no cuda-python: say what the engine needs, not only what is missing
            library = "TensorRT-RTX" if flavour == TENSORRT_RTX else "TensorRT"
            if str(exc) == NO_GPU:  # no driver: installing cuda-python cannot help
                raise UserError(f"{self.model_file}: a {library} engine runs only on an NVIDIA GPU; {exc}") from None
            raise UserError(
                f"{self.model_file}: a {library} engine runs only on an NVIDIA GPU, via cuda-python; {exc}"
            ) from None

    def check_requirements(self) -> None:
        """The file, its sidecar, cuda-python and the flavour's library, as `activate()`
        checks them, but without a GPU (a Ray driver may have none)."""
        from ...engine_meta import read_sidecar
        from ...flavours import default_flavour, import_flavour

        super().check_requirements()
        meta = read_sidecar(self.model_file, self.options.allow_missing_sidecar)
        flavour = meta.flavour if meta else default_flavour()
        self._cuda_for(flavour)
        import_flavour(flavour)

    def _deserialise(self, trt_module: ModuleType, data: bytes) -> trt.ICudaEngine:
        from .engine import check_validity

        self._trt_logger = trt_module.Logger(trt_module.Logger.WARNING)
        self._runtime: trt.Runtime = trt_module.Runtime(self._trt_logger)
        if self.options.allow_engine_host_code:
            log.warning(
                "%s: host code inside the engine is allowed to run (--allow-engine-host-code); "
                "do this only for engines you built or trust",
                self.model_file,
            )
            self._runtime.engine_host_code_allowed = True
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
        if cuda is not None and "engine" in self.__dict__:  # this thread's current device may be another
            cuda.set_device(self.options.device)
        active, self._active_engine = self._active_engine, None
        try:
            if active is not None:
                active.close()
        finally:
            for name in ("engine", "_runtime"):
                self.__dict__.pop(name, None)

    @property
    def _engine_state(self) -> ActiveEngine:
        if self._active_engine is None:
            self._require_active()
        assert self._active_engine is not None
        return self._active_engine

    # -- engine description -------------------------------------------------------------
    def output_classes(self) -> int | None:
        return self.num_classes

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return self.profiles.accepts(tuple(shape))

    def describe(self) -> str:
        return f"{self.backend}:{self.model_file.name}" + ("+graph" if self.options.cuda_graph else "")

    @property
    def contexts(self) -> int:
        """Execution contexts made so far (one per concurrent caller, at most)."""
        return len(self._active_engine.lanes.lanes) if self._active_engine else 0

    @property
    def _lanes(self) -> LanePool:
        return self._engine_state.lanes

    # -- host memory and inference ------------------------------------------------------
    def host_buffer(self, shape: tuple[int, ...], dtype: str | None = None) -> np.ndarray:
        """Page-locked host memory that the returned array owns: freed when the last array
        over it is collected, never under it (so it outlives deactivate() if kept). `infer`
        copies from it to the GPU directly (no staging copy): fill it, infer on it or a slice."""
        self._require_active("host_buffer")
        return self._engine_state.host_buffer(shape, np.dtype(dtype or self.input_spec.dtype))

    def _infer(self, images: np.ndarray) -> np.ndarray:
        return self._engine_state.infer_host(images)

    def _infer_device(self, images: Any) -> np.ndarray:
        return self._engine_state.infer_device(images)

    def infer_batches(self, batches: Iterable[Any]) -> Generator[np.ndarray, None, None]:
        self._require_active()
        return self._engine_state.infer_batches(batches)
