"""A numpy stand-in for the part of CuPy that runtime.app.images.gpu uses.

"Device" arrays are numpy arrays (HostArray: `.data.ptr` as CuPy's), streams and devices
are no-op context managers, and `RawModule(code=...)` builds `code`, the CUDA source the
runtime hands CuPy, for the host: g++ compiles it after cuda_host.h, which maps the CUDA
built-ins, and `get_function(name)(grid, block, args)` runs every thread of the grid on
the CPU through ctypes, with the arguments passed as cuLaunchKernel takes them.

`sanitize="address,undefined"` builds with ASan/UBSan (every error fatal); the library can
then only be loaded by a process that starts with libasan preloaded (see sanitizer_env).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
HEADER = HERE / "cuda_host.h"
FLAGS = ["-std=c++17", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-Wall", "-Werror", "-Wno-unused-function"]


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def kernel_names(code: str) -> list[str]:
    return re.findall(r"__global__\s+void\s+(\w+)\s*\(", code)


def build(code: str, sanitize: str = "") -> Path:
    """The host shared library of `code` (cached by content): raises RuntimeError with the
    compiler's message when it does not compile."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler (g++) to build the kernels for the host")
    flags = FLAGS + ([f"-fsanitize={sanitize}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"] if sanitize else [])
    key = hashlib.sha256("\0".join([code, HEADER.read_text(), cxx, *flags]).encode()).hexdigest()[:20]
    out_dir = Path(tempfile.gettempdir()) / f"kernel-host-{os.getuid()}"
    out_dir.mkdir(exist_ok=True)
    lib = out_dir / f"{key}.so"
    if lib.exists():
        return lib
    launchers = "".join(f"HOST_LAUNCHER({name})\n" for name in kernel_names(code))
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        src = Path(tmp) / "kernels.cpp"
        src.write_text(f'#include "cuda_host.h"\n#line 1 "kernels.cu"\n{code}\n{launchers}')
        made = Path(tmp) / "kernels.so"
        done = subprocess.run([cxx, *flags, "-I", str(HERE), "-o", str(made), str(src)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"g++ could not build the kernels for the host:\n{done.stderr}")
        os.replace(made, lib)
    return lib


def sanitizer_env() -> dict[str, str]:
    """Environment for a child process that loads a sanitizer build."""
    cxx = compiler() or "g++"
    asan = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return {
        **os.environ,
        "LD_PRELOAD": asan,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }


class _Pointer:
    def __init__(self, ptr: int) -> None:
        self.ptr = ptr


class HostArray(np.ndarray):  # type: ignore[type-arg]
    """A numpy array standing for a CuPy device array: `.data.ptr` is its address."""

    @property
    def data(self) -> _Pointer:  # type: ignore[override]
        return _Pointer(int(self.__array_interface__["data"][0]))


def _host(a: np.ndarray) -> HostArray:
    return a.view(HostArray)


class RawFunction:
    def __init__(self, lib: ctypes.CDLL, name: str) -> None:
        self.name = name
        self._launch = getattr(lib, f"launch_{name}")
        self.launches = 0

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple[Any, ...], stream: Any = None) -> None:
        values: list[Any] = []
        for a in args:
            if isinstance(a, np.ndarray):
                values.append(ctypes.c_void_p(int(a.__array_interface__["data"][0])))
            elif isinstance(a, np.generic):  # CuPy passes a numpy scalar as its own C type
                values.append(np.ctypeslib.as_ctypes_type(a.dtype)(a.item()))
            else:
                raise TypeError(f"{self.name}: argument {a!r} is not a numpy scalar or array")
        params = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        dims = [(ctypes.c_uint * 3)(*(tuple(d) + (1, 1))[:3]) for d in (grid, block)]
        self.launches += 1
        self._launch(dims[0], dims[1], params)


class RawModule:
    sanitize = ""  # set on the class by a sanitizer run

    def __init__(self, code: str, options: tuple[str, ...] = ()) -> None:
        self.code, self.options = code, options
        self._lib = ctypes.CDLL(str(build(code, self.sanitize)))
        self.functions: dict[str, RawFunction] = {}

    def get_function(self, name: str) -> RawFunction:
        return self.functions.setdefault(name, RawFunction(self._lib, name))


class Stream:
    """CuPy's stream as a no-op: the host launches run when called."""

    null: Stream

    def __init__(self, non_blocking: bool = False) -> None:
        self.ptr = id(self)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def synchronize(self) -> None:
        pass


Stream.null = Stream()


class Device:
    def __init__(self, index: int = 0) -> None:
        self.id = index

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def use(self) -> None:
        pass


def _asarray(a: Any, dtype: Any = None) -> HostArray:
    if isinstance(a, HostArray) and (dtype is None or a.dtype == np.dtype(dtype)):
        return a
    if not isinstance(a, np.ndarray) and hasattr(a, "cpu"):  # an nvImageCodec image (its CPU backend's)
        a = np.asarray(a.cpu())
    return _host(np.array(a, dtype=dtype))


def module() -> types.SimpleNamespace:
    """A fresh stand-in `cupy` module."""
    cuda = types.SimpleNamespace(
        Stream=Stream,
        Device=Device,
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    )
    return types.SimpleNamespace(
        uint8=np.uint8,
        int32=np.int32,
        int64=np.int64,
        float32=np.float32,
        cuda=cuda,
        RawModule=RawModule,
        asarray=_asarray,
        asnumpy=lambda a: np.array(a).view(np.ndarray),
        ascontiguousarray=lambda a: _host(np.ascontiguousarray(a)),
        empty=lambda shape, dtype=np.float32: _host(np.empty(shape, dtype)),
        zeros=lambda shape, dtype=np.float32: _host(np.zeros(shape, dtype)),
        full=lambda shape, value, dtype=None: _host(np.full(shape, value, dtype)),
    )
