"""CUDA memory and streams for the TensorRT runner, through cuda-python or pycuda.

cuda-python (`cuda.bindings.runtime`, or `cuda.cudart` in releases before 12.8) is
what NVIDIA's TensorRT samples use since 10.13; pycuda is accepted where it is the one
installed (JetPack images often have it). Every CUDA call's status is checked.
"""

from __future__ import annotations

import ctypes
from typing import Any, Protocol

import numpy as np

from .errors import UserError

INSTALL_HINT = (
    "install cuda-python (pip install cuda-python, or the '[tensorrt]' extra); pycuda also works where it is installed"
)


class CudaApi(Protocol):
    """The handful of CUDA operations the runner needs."""

    def device(self) -> tuple[str, str]: ...  # (GPU name, compute capability "8.7")
    def malloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def malloc_host(self, nbytes: int) -> tuple[int, np.ndarray]: ...  # (pointer, uint8 view)
    def free_host(self, ptr: int) -> None: ...
    def stream_create(self) -> int: ...
    def stream_destroy(self, stream: int) -> None: ...
    def synchronize(self, stream: int) -> None: ...
    def htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...
    def dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None: ...


def _host_view(ptr: int, nbytes: int) -> np.ndarray:
    return np.frombuffer(memoryview((ctypes.c_uint8 * nbytes).from_address(ptr)).cast("B"), dtype=np.uint8)


class CudaPython:
    """cuda-python's runtime API. Calls return (cudaError_t, value...) tuples."""

    def __init__(self) -> None:
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            try:
                from cuda import cudart  # type: ignore[no-redef,attr-defined]
            except ImportError:
                raise UserError(f"cuda-python is not installed; {INSTALL_HINT}") from None
        self.cudart: Any = cudart

    def _check(self, result: Any, what: str) -> Any:
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, name = self.cudart.cudaGetErrorName(err)
            raise UserError(f"CUDA {what} failed: {name.decode() if isinstance(name, bytes) else name}")
        return values[0] if len(values) == 1 else values

    def device(self) -> tuple[str, str]:
        count = self._check(self.cudart.cudaGetDeviceCount(), "device count")
        if int(count) == 0:
            raise UserError("no CUDA device found")
        dev = self._check(self.cudart.cudaGetDevice(), "get device")
        prop = self._check(self.cudart.cudaGetDeviceProperties(dev), "device properties")
        name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        return name, f"{prop.major}.{prop.minor}"

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.cudart.cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))

    def free(self, ptr: int) -> None:
        self._check(self.cudart.cudaFree(ptr), "cudaFree")

    def malloc_host(self, nbytes: int) -> tuple[int, np.ndarray]:
        ptr = int(self._check(self.cudart.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})"))
        return ptr, _host_view(ptr, nbytes)

    def free_host(self, ptr: int) -> None:
        self._check(self.cudart.cudaFreeHost(ptr), "cudaFreeHost")

    def stream_create(self) -> int:
        return int(self._check(self.cudart.cudaStreamCreate(), "cudaStreamCreate"))

    def stream_destroy(self, stream: int) -> None:
        self._check(self.cudart.cudaStreamDestroy(stream), "cudaStreamDestroy")

    def synchronize(self, stream: int) -> None:
        self._check(self.cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.cudart.cudaMemcpyAsync(dst, src, nbytes, kind, stream), "host-to-device copy")

    def dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.cudart.cudaMemcpyAsync(dst, src, nbytes, kind, stream), "device-to-host copy")


class PyCuda:
    """pycuda's driver API, on the device's primary context."""

    def __init__(self) -> None:
        try:
            import pycuda.driver as cuda
        except ImportError:
            raise UserError(f"neither cuda-python nor pycuda is installed; {INSTALL_HINT}") from None
        self.cuda: Any = cuda
        cuda.init()
        if cuda.Device.count() == 0:
            raise UserError("no CUDA device found")
        self.dev = cuda.Device(0)
        self.ctx = self.dev.retain_primary_context()
        self.ctx.push()
        self._keep: dict[int, Any] = {}  # pycuda frees when its objects are collected
        self._streams: dict[int, Any] = {}

    def device(self) -> tuple[str, str]:
        major, minor = self.dev.compute_capability()
        return str(self.dev.name()), f"{major}.{minor}"

    def malloc(self, nbytes: int) -> int:
        mem = self.cuda.mem_alloc(nbytes)
        self._keep[int(mem)] = mem
        return int(mem)

    def free(self, ptr: int) -> None:
        self._keep.pop(ptr).free()

    def malloc_host(self, nbytes: int) -> tuple[int, np.ndarray]:
        arr = self.cuda.pagelocked_empty(nbytes, np.uint8)
        ptr = int(arr.ctypes.data)
        self._keep[ptr] = arr
        return ptr, arr

    def free_host(self, ptr: int) -> None:
        self._keep.pop(ptr).base.free()

    def stream_create(self) -> int:
        stream = self.cuda.Stream()
        self._streams[int(stream.handle)] = stream
        return int(stream.handle)

    def stream_destroy(self, stream: int) -> None:
        self._streams.pop(stream, None)

    def synchronize(self, stream: int) -> None:
        self._streams[stream].synchronize()

    def htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self.cuda.memcpy_htod_async(dst, self._keep[src][:nbytes] if src in self._keep else src, self._streams[stream])

    def dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self.cuda.memcpy_dtoh_async(self._keep[dst][:nbytes], src, self._streams[stream])


def default_cuda() -> CudaApi:
    """cuda-python where importable, else pycuda, else a UserError naming both."""
    try:
        return CudaPython()
    except UserError as first:
        if "not installed" not in str(first):
            raise
        return PyCuda()
