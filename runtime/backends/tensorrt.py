"""TensorRT backend: deserialise an engine and run it with tensors addressed by name.

Buffers (pinned host and device, for input and output) are sized once for the largest
profile and reused; copies and execution are queued on one CUDA stream. Batches larger
than the profile allows are split into chunks of the profile's maximum batch.

Threads: a runner owns one execution context and one stream, and `infer` holds a lock
while it uses them, so a runner may be shared between threads (calls are serialised).
For parallel inference, give each thread its own runner: contexts and streams are then
independent and only the engine file is shared.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cuda_buffers import CudaApi, default_cuda
from .engine_meta import EngineMeta, check_compatible, read_sidecar
from .errors import UserError, require_tensorrt
from .manifest import INPUT_NAME, OUTPUT_NAME
from .runner import Runner

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

TRT_HINT = (
    "install TensorRT: `pip install -e '.[tensorrt]'` on x86-64 Linux; on Jetson use JetPack's TensorRT "
    "through a venv made with --system-site-packages"
)
FLOAT32_BYTES = 4


def _logger() -> trt.ILogger:
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


class TensorRTRunner(Runner):
    backend = "tensorrt"

    def __init__(self, engine_file: str | Path, cuda: CudaApi | None = None) -> None:
        super().__init__(engine_file)
        self._cuda_override = cuda
        self._lock = threading.Lock()
        self._profile_index = 0

    # -- life cycle -------------------------------------------------------------------
    def _activate(self) -> None:
        require_tensorrt(TRT_HINT)
        import tensorrt as trt

        if not self.model_file.is_file():
            raise UserError(f"{self.model_file}: no such file")
        self.meta: EngineMeta = read_sidecar(self.model_file)
        self.cuda: CudaApi = self._cuda_override or default_cuda()
        gpu_name, capability = self.cuda.device()
        check_compatible(self.meta, self.model_file, getattr(trt, "__version__", "unknown"), capability, gpu_name)

        self._trt_logger = _logger()
        self._runtime: trt.Runtime = trt.Runtime(self._trt_logger)
        engine = self._runtime.deserialize_cuda_engine(self.model_file.read_bytes())
        if engine is None:
            raise UserError(
                f"{self.model_file}: TensorRT could not deserialise it (corrupt file, or built by another "
                "TensorRT version or for another GPU than its sidecar says)"
            )
        self.engine: trt.ICudaEngine = engine
        self._check_io()
        context = self.engine.create_execution_context()
        if context is None:
            raise UserError(f"{self.model_file}: TensorRT could not create an execution context (out of GPU memory?)")
        self.context: trt.IExecutionContext = context

        self.profiles = [self._profile_shapes(i) for i in range(self.engine.num_optimization_profiles)]
        max_input = max(int(np.prod(p[2])) for p in self.profiles)
        max_batch = max(p[2][0] for p in self.profiles)
        self.num_classes = int(self.engine.get_tensor_shape(OUTPUT_NAME)[-1])
        if self.num_classes <= 0:
            raise UserError(f"{self.model_file}: output '{OUTPUT_NAME}' has no static class dimension")
        self._in_bytes = max_input * FLOAT32_BYTES
        self._out_bytes = max_batch * self.num_classes * FLOAT32_BYTES
        self.stream = self.cuda.stream_create()
        self.d_in = self.cuda.malloc(self._in_bytes)
        self.d_out = self.cuda.malloc(self._out_bytes)
        self.h_in_ptr, self.h_in = self.cuda.malloc_host(self._in_bytes)
        self.h_out_ptr, self.h_out = self.cuda.malloc_host(self._out_bytes)
        log.info(
            "TensorRT engine %s: %d profile(s), buffers %.1f MiB in / %.1f KiB out",
            self.model_file.name,
            len(self.profiles),
            self._in_bytes / 2**20,
            self._out_bytes / 2**10,
        )

    def _deactivate(self) -> None:
        """Free what exists: also called on a runner whose activation failed part-way."""
        with self._lock:
            state = {n: self.__dict__.pop(n, None) for n in ("d_in", "d_out", "h_in_ptr", "h_out_ptr", "stream")}
            for name in ("context", "engine", "_runtime"):
                self.__dict__.pop(name, None)
            cuda = self.__dict__.get("cuda")
            if cuda is None:
                return
            for name in ("d_in", "d_out"):
                if state[name] is not None:
                    cuda.free(state[name])
            for name in ("h_in_ptr", "h_out_ptr"):
                if state[name] is not None:
                    cuda.free_host(state[name])
            if state["stream"] is not None:
                cuda.stream_destroy(state["stream"])

    # -- engine description -------------------------------------------------------------
    def _check_io(self) -> None:
        import tensorrt as trt

        names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        if names != {INPUT_NAME, OUTPUT_NAME}:
            raise UserError(
                f"{self.model_file}: I/O tensors {sorted(names)} | expected ['{INPUT_NAME}', '{OUTPUT_NAME}']"
            )
        for name, mode in ((INPUT_NAME, trt.TensorIOMode.INPUT), (OUTPUT_NAME, trt.TensorIOMode.OUTPUT)):
            if self.engine.get_tensor_mode(name) != mode:
                raise UserError(f"{self.model_file}: tensor '{name}' is not an engine {mode.name.lower()}")
            if self.engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise UserError(
                    f"{self.model_file}: tensor '{name}' is {self.engine.get_tensor_dtype(name)}, expected FLOAT"
                )

    def _profile_shapes(self, index: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        shapes = self.engine.get_tensor_profile_shape(INPUT_NAME, index)
        if len(shapes) != 3:
            raise UserError(f"{self.model_file}: profile {index} has no shapes for input '{INPUT_NAME}'")
        # trt.Dims is indexable but not iterable in the 10.x stubs
        lo, opt, hi = (tuple(int(d[i]) for i in range(len(d))) for d in shapes)
        return lo, opt, hi

    def allowed(self) -> str:
        return ", ".join(f"{p[0]}..{p[2]}" for p in self.profiles).replace(" ", "")

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return any(
            all(lo[d] <= shape[d] <= hi[d] for d in (1, 2, 3)) and shape[0] >= lo[0] for lo, _, hi in self.profiles
        )

    def _choose_profile(self, shape: tuple[int, ...]) -> int:
        """First profile that holds this image size (batch is split to fit)."""
        for i, (lo, _, hi) in enumerate(self.profiles):
            if all(lo[d] <= shape[d] <= hi[d] for d in (1, 2, 3)) and shape[0] >= lo[0]:
                return i
        raise UserError(f"input '{INPUT_NAME}' | got shape {shape} | engine profile allows {self.allowed()}")

    # -- inference ------------------------------------------------------------------------
    def _infer(self, images: np.ndarray) -> np.ndarray:
        import tensorrt as trt

        profile = self._choose_profile(images.shape)
        max_batch = self.profiles[profile][2][0]
        outputs = []
        with self._lock:
            if profile != self._profile_index:
                if not self.context.set_optimization_profile_async(profile, self.stream):
                    raise UserError(f"TensorRT refused optimization profile {profile}")
                self._profile_index = profile
            for start in range(0, images.shape[0], max_batch):
                chunk = images[start : start + max_batch]
                n = chunk.shape[0]
                if not self.context.set_input_shape(INPUT_NAME, trt.Dims(list(chunk.shape))):
                    raise UserError(
                        f"input '{INPUT_NAME}' | got shape {chunk.shape} | engine profile allows {self.allowed()}"
                    )
                nbytes = chunk.nbytes
                self.h_in[:nbytes] = chunk.reshape(-1).view(np.uint8)
                out_bytes = n * self.num_classes * FLOAT32_BYTES
                for name, ptr in ((INPUT_NAME, self.d_in), (OUTPUT_NAME, self.d_out)):
                    if not self.context.set_tensor_address(name, ptr):
                        raise UserError(f"TensorRT refused the device address for '{name}'")
                self.cuda.htod_async(self.d_in, self.h_in_ptr, nbytes, self.stream)
                if not self.context.execute_async_v3(self.stream):
                    raise UserError(f"TensorRT execution failed for input shape {chunk.shape}")
                self.cuda.dtoh_async(self.h_out_ptr, self.d_out, out_bytes, self.stream)
                self.cuda.synchronize(self.stream)
                outputs.append(self.h_out[:out_bytes].view(np.float32).reshape(n, self.num_classes).copy())
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
