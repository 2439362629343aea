"""Tensors that are already on a GPU (CuPy arrays, torch tensors), read through DLPack.

`x.__dlpack__(stream=s)` hands over a capsule holding a DLManagedTensor: the device
pointer, shape, dtype and strides. Passing our stream lets the producer order its
pending work on `x` before anything we enqueue on `s`, so no device-wide synchronisation
is needed. The capsule is kept (unconsumed) until the runner is done with the memory;
dropping it then lets its destructor release the producer's reference.

Only the legacy `dltensor` capsule is read (no `max_version` is asked for), which every
DLPack producer still returns by default.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from .errors import UserError

KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED = 1, 2, 3, 13
_GPU_TYPES = (KDL_CUDA, KDL_CUDA_MANAGED)
_CODES = {0: "int", 1: "uint", 2: "float", 4: "bfloat", 5: "complex", 6: "bool"}


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int), ("device_id", ctypes.c_int)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int),
        ("dtype", _DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def dlpack_device(obj: Any) -> tuple[int, int] | None:
    """(DLPack device type, device id) of `obj`, or None when it speaks no DLPack."""
    if not hasattr(obj, "__dlpack__") or not hasattr(obj, "__dlpack_device__"):
        return None
    kind, index = obj.__dlpack_device__()
    return int(kind), int(index)


def is_gpu(device: tuple[int, int] | None) -> bool:
    return device is not None and device[0] in _GPU_TYPES


@dataclass
class DeviceArray:
    """A view of a GPU tensor: valid while this object (which holds the capsule) lives."""

    ptr: int
    shape: tuple[int, ...]
    dtype: str  # "float32", "uint8", ... (numpy's spelling)
    device_id: int
    contiguous: bool
    _keep: tuple[Any, Any]

    @property
    def itemsize(self) -> int:
        return _bits(self.dtype) // 8

    def release(self) -> None:
        """Give the memory back to its producer (the capsule's destructor runs)."""
        self._keep = (None, None)


def _bits(dtype: str) -> int:
    digits = "".join(ch for ch in dtype if ch.isdigit())
    return int(digits) if digits else 8


def from_dlpack(obj: Any, stream: int) -> DeviceArray:
    """Read a GPU tensor's pointer, shape and dtype; `stream` is where we will use it."""
    device = dlpack_device(obj)
    if not is_gpu(device):
        raise UserError(
            f"input 'images' | got a {type(obj).__name__} on DLPack device {device} | expected a CUDA tensor"
        )
    try:
        capsule = obj.__dlpack__(stream=stream)
    except (TypeError, BufferError, ValueError, RuntimeError) as exc:
        raise UserError(f"input 'images' | {type(obj).__name__}.__dlpack__ refused: {exc}") from None
    try:
        address = _get_pointer(capsule, b"dltensor")
    except ValueError:
        raise UserError(
            f"input 'images' | {type(obj).__name__}.__dlpack__ returned no legacy 'dltensor' capsule"
        ) from None
    managed = _DLManagedTensor.from_address(address)
    t = managed.dl_tensor
    shape = tuple(int(t.shape[i]) for i in range(t.ndim))
    code = _CODES.get(int(t.dtype.code), f"code{int(t.dtype.code)}")
    dtype = "bool" if code == "bool" else f"{code}{int(t.dtype.bits)}"
    if int(t.dtype.lanes) != 1:
        dtype += f"x{int(t.dtype.lanes)}"
    contiguous = True
    if t.strides:
        expected = 1
        for i in reversed(range(t.ndim)):
            if shape[i] != 1 and int(t.strides[i]) != expected:
                contiguous = False
            expected *= shape[i]
    ptr = int(t.data or 0) + int(t.byte_offset)
    return DeviceArray(ptr, shape, dtype, int(t.device.device_id), contiguous, (obj, capsule))
