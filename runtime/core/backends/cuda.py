"""CUDA memory, streams, events and graphs for the TensorRT runner, through cuda-python.

cuda-python (`cuda.bindings.runtime`, or `cuda.cudart` before 12.8) is what NVIDIA's
TensorRT samples use since 10.13, and it is the only CUDA binding this project uses.
pycuda was dropped: its driver-API contexts are current only on the thread that pushed
them, so a runner shared between threads needed push/pop around every call, and the
device was fixed when the context was made. The runtime API used here works on the
device's primary context, which every thread shares; the current device is per thread,
so the runner calls `set_device` on each thread before it touches memory or streams.

Every call's status is checked and a failure is a UserError naming the call.
"""

from __future__ import annotations

import ctypes
from typing import Any, Protocol

import numpy as np

from ..errors import UserError

INSTALL_HINT = "install cuda-python: `pip install cuda-python` (or the '[tensorrt]' extra)"
NO_GPU = "this machine has no NVIDIA GPU (no NVIDIA driver found); a CUDA GPU is needed"
DRIVER_LIBRARIES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")  # Linux and Jetson, Windows


def driver_present() -> bool:
    """Whether the NVIDIA driver's CUDA library loads here: without it no GPU can run an
    engine, and installing cuda-python would not help."""
    for name in DRIVER_LIBRARIES:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


class CudaApi(Protocol):
    """The CUDA operations the runner needs; pointers, streams, events and graphs are ints."""

    def device_count(self) -> int: ...
    def set_device(self, index: int) -> None: ...
    def device(self, index: int = 0) -> tuple[str, str]: ...  # (GPU name, compute capability "8.7")
    def malloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def malloc_host(self, nbytes: int) -> tuple[int, np.ndarray]: ...  # (pointer, pinned uint8 view)
    def free_host(self, ptr: int) -> None: ...
    def host_register(self, ptr: int, nbytes: int) -> None: ...
    def host_unregister(self, ptr: int) -> None: ...
    def stream_create(self) -> int: ...
    def stream_destroy(self, stream: int) -> None: ...
    def synchronize(self, stream: int) -> None: ...
    def event_create(self) -> int: ...
    def event_destroy(self, event: int) -> None: ...
    def event_record(self, event: int, stream: int) -> None: ...
    def event_synchronize(self, event: int) -> None: ...
    def stream_wait_event(self, stream: int, event: int) -> None: ...
    def htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...
    def dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...
    def dtod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...
    def memset_async(self, ptr: int, value: int, nbytes: int, stream: int) -> None: ...
    def begin_capture(self, stream: int) -> None: ...
    def end_capture(self, stream: int) -> int: ...  # an instantiated, launchable graph
    def graph_launch(self, graph: int, stream: int) -> None: ...
    def graph_destroy(self, graph: int) -> None: ...


def host_view(ptr: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of `nbytes` of host memory at `ptr` (no copy, no ownership)."""
    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))


class CudaPython:
    """cuda-python's runtime API. Its calls return (cudaError_t, value...) tuples."""

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            try:
                from cuda import cudart  # type: ignore[no-redef,attr-defined]
            except ImportError:
                # Without a driver there is no GPU, and cuda-python would not help: say that instead.
                raise UserError(
                    f"cuda-python is not installed; {INSTALL_HINT}" if driver_present() else NO_GPU
                ) from None
        self.cudart: Any = cudart
        # The graphs this object instantiated: their source graph is freed with them.
        self._graphs: dict[int, Any] = {}

    def _check(self, result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, name = self.cudart.cudaGetErrorName(err)
            raise UserError(f"CUDA {what} failed: {name.decode() if isinstance(name, bytes) else name}")
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def device_count(self) -> int:
        result = self.cudart.cudaGetDeviceCount()
        # No driver or no GPU: an error code rather than 0 devices; both mean "none here".
        return int(result[1]) if int(result[0]) == 0 else 0

    def set_device(self, index: int) -> None:
        self._check(self.cudart.cudaSetDevice(index), f"cudaSetDevice({index})")

    def device(self, index: int = 0) -> tuple[str, str]:
        count = self.device_count()
        if count == 0:
            raise UserError("no CUDA device found (no NVIDIA GPU, or no driver)")
        if not 0 <= index < count:
            raise UserError(f"CUDA device {index} does not exist; this machine has {count} (0..{count - 1})")
        prop = self._check(self.cudart.cudaGetDeviceProperties(index), "device properties")
        name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        return name, f"{prop.major}.{prop.minor}"

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.cudart.cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))

    def free(self, ptr: int) -> None:
        self._check(self.cudart.cudaFree(ptr), "cudaFree")

    def malloc_host(self, nbytes: int) -> tuple[int, np.ndarray]:
        ptr = int(self._check(self.cudart.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})"))
        return ptr, host_view(ptr, nbytes)

    def free_host(self, ptr: int) -> None:
        self._check(self.cudart.cudaFreeHost(ptr), "cudaFreeHost")

    def host_register(self, ptr: int, nbytes: int) -> None:
        flags = self.cudart.cudaHostRegisterDefault
        self._check(self.cudart.cudaHostRegister(ptr, nbytes, flags), f"cudaHostRegister({nbytes})")

    def host_unregister(self, ptr: int) -> None:
        self._check(self.cudart.cudaHostUnregister(ptr), "cudaHostUnregister")

    def stream_create(self) -> int:
        # Non-blocking: no implicit ordering with the legacy default stream other libraries use.
        flags = self.cudart.cudaStreamNonBlocking
        return int(self._check(self.cudart.cudaStreamCreateWithFlags(flags), "cudaStreamCreateWithFlags"))

    def stream_destroy(self, stream: int) -> None:
        self._check(self.cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def synchronize(self, stream: int) -> None:
        self._check(self.cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def event_create(self) -> int:
        flags = self.cudart.cudaEventDisableTiming
        return int(self._check(self.cudart.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags"))

    def event_destroy(self, event: int) -> None:
        self._check(self.cudart.cudaEventDestroy(event), "cudaEventDestroy")

    def event_record(self, event: int, stream: int) -> None:
        self._check(self.cudart.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_synchronize(self, event: int) -> None:
        self._check(self.cudart.cudaEventSynchronize(event), "cudaEventSynchronize")

    def stream_wait_event(self, stream: int, event: int) -> None:
        self._check(self.cudart.cudaStreamWaitEvent(stream, event, 0), "cudaStreamWaitEvent")

    def _copy(self, dst: int, src: int, nbytes: int, kind: str, stream: int, what: str) -> None:
        flag = getattr(self.cudart.cudaMemcpyKind, kind)
        self._check(self.cudart.cudaMemcpyAsync(dst, src, nbytes, flag, stream), what)

    def htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy(dst, src, nbytes, "cudaMemcpyHostToDevice", stream, "host-to-device copy")

    def dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy(dst, src, nbytes, "cudaMemcpyDeviceToHost", stream, "device-to-host copy")

    def dtod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy(dst, src, nbytes, "cudaMemcpyDeviceToDevice", stream, "device-to-device copy")

    def memset_async(self, ptr: int, value: int, nbytes: int, stream: int) -> None:
        self._check(self.cudart.cudaMemsetAsync(ptr, value, nbytes, stream), "cudaMemsetAsync")

    def begin_capture(self, stream: int) -> None:
        # Thread-local mode: another thread allocating memory (a new execution context, say)
        # while this one captures must not invalidate the capture.
        mode = self.cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._check(self.cudart.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def end_capture(self, stream: int) -> int:
        graph = self._check(self.cudart.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        try:
            exec_graph = self._check(self.cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        except UserError:
            self.cudart.cudaGraphDestroy(graph)
            raise
        handle = int(exec_graph)
        self._graphs[handle] = (exec_graph, graph)
        return handle

    def graph_launch(self, graph: int, stream: int) -> None:
        self._check(self.cudart.cudaGraphLaunch(self._graphs[graph][0], stream), "cudaGraphLaunch")

    def graph_destroy(self, graph: int) -> None:
        exec_graph, source = self._graphs.pop(graph)
        self._check(self.cudart.cudaGraphExecDestroy(exec_graph), "cudaGraphExecDestroy")
        self._check(self.cudart.cudaGraphDestroy(source), "cudaGraphDestroy")


def default_cuda() -> CudaApi:
    """cuda-python, or one UserError saying how to install it."""
    return CudaPython()
