"""NVRTC through ctypes: compile kernels.cu for a GPU architecture on a machine with no GPU.

The pip wheels carry NVRTC: `nvidia-cuda-nvrtc` (CUDA 13: Turing sm_75 to Blackwell) and
`nvidia-cuda-nvrtc-cu12` (CUDA 12, the last with Volta/Xavier sm_72). Compiling to a real
architecture (`sm_XX`) runs ptxas inside NVRTC, whose `-v` report gives each kernel's
registers and spills. The tests compile every architecture the project claims; `make
verify-gpu` records the report.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path

from ....core.errors import UserError

# What --decode gpu claims: Turing, Ampere (and Orin sm_87), Ada, Hopper, Blackwell.
CLAIMED_ARCHS = (75, 80, 86, 87, 89, 90, 100, 120, 121)
XAVIER_ARCH = 72  # Jetson Xavier: only CUDA 12's NVRTC still compiles for it
WHEELS = {13: "nvidia-cuda-nvrtc", 12: "nvidia-cuda-nvrtc-cu12"}


@dataclass(frozen=True)
class KernelReport:
    name: str
    registers: int
    spill_bytes: int  # spill stores + spill loads


@dataclass(frozen=True)
class Compiled:
    arch: int
    cubin_bytes: int
    kernels: tuple[KernelReport, ...]


def library_path(major: int) -> Path | None:
    """The NVRTC shared library of CUDA `major` from its pip wheel, or None."""
    try:
        import nvidia  # type: ignore[import-not-found,unused-ignore]  # the wheels' namespace package
    except ImportError:
        return None
    for root in getattr(nvidia, "__path__", []):
        for sub in (f"cu{major}", "cuda_nvrtc"):
            path = Path(root) / sub / "lib" / f"libnvrtc.so.{major}"
            if path.is_file():
                return path
    return None


def _report(log: str) -> tuple[KernelReport, ...]:
    kernels = []
    for block in re.split(r"Compiling entry function '", log)[1:]:
        name = block.split("'", 1)[0]
        regs = re.search(r"Used (\d+) registers", block)
        spills = [int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", block)]
        kernels.append(KernelReport(name, int(regs.group(1)) if regs else -1, sum(spills)))
    return tuple(kernels)


class Nvrtc:
    def __init__(self, major: int) -> None:
        path = library_path(major)
        if path is None:
            raise UserError(f"NVRTC {major} is not installed: pip install {WHEELS.get(major, 'nvidia-cuda-nvrtc')}")
        self._lib = ctypes.CDLL(str(path))
        self._lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        ver = (ctypes.c_int(), ctypes.c_int())
        self._check(self._lib.nvrtcVersion(ctypes.byref(ver[0]), ctypes.byref(ver[1])), "nvrtcVersion")
        self.version = (ver[0].value, ver[1].value)

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            raise UserError(f"NVRTC {what}: {self._lib.nvrtcGetErrorString(result).decode()}")

    def supported_archs(self) -> list[int]:
        n = ctypes.c_int()
        self._check(self._lib.nvrtcGetNumSupportedArchs(ctypes.byref(n)), "nvrtcGetNumSupportedArchs")
        archs = (ctypes.c_int * n.value)()
        self._check(self._lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
        return list(archs)

    def compile(self, source: str, arch: int, options: tuple[str, ...] = ()) -> Compiled:
        """Compile `source` to a cubin for sm_`arch`; UserError with NVRTC's log if it fails."""
        prog = ctypes.c_void_p()
        self._check(
            self._lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kernels.cu", 0, None, None),
            "nvrtcCreateProgram",
        )
        try:
            opts = [o.encode() for o in (*options, f"--gpu-architecture=sm_{arch}", "-Xptxas=-v")]
            result = self._lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
            size = ctypes.c_size_t()
            self._check(self._lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
            log = ctypes.create_string_buffer(size.value)
            self._check(self._lib.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
            text = log.value.decode(errors="replace")
            if result != 0:
                raise UserError(f"NVRTC {self.version[0]}.{self.version[1]} could not compile for sm_{arch}:\n{text}")
            self._check(self._lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "nvrtcGetCUBINSize")
            return Compiled(arch, size.value, _report(text))
        finally:
            self._lib.nvrtcDestroyProgram(ctypes.byref(prog))
