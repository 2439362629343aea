"""The two TensorRT flavours this project builds and runs, and how to import each.

`tensorrt` (TensorRT 10.x/11.x: data-centre GPUs, Jetson) and `tensorrt-rtx` (TensorRT
for RTX 1.x, module `tensorrt_rtx`: RTX desktop GPUs, builds ahead of time without a GPU)
share the builder, parser and runtime API; this module is the one place that maps a
flavour to its Python module and lists what each can target.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UserError

TENSORRT = "tensorrt"
TENSORRT_RTX = "tensorrt-rtx"
FLAVOURS = (TENSORRT, TENSORRT_RTX)
MODULES = {TENSORRT: "tensorrt", TENSORRT_RTX: "tensorrt_rtx"}
INSTALL_HINTS = {
    TENSORRT: (
        "install TensorRT: `pip install -e '.[tensorrt]'` on x86-64 Linux with an NVIDIA driver; on Jetson use "
        "JetPack's TensorRT through a venv made with --system-site-packages"
    ),
    TENSORRT_RTX: "install TensorRT for RTX: `pip install -e '.[rtx]'` (builds engines without a GPU)",
}
# Compute capabilities TensorRT-RTX 1.x builds for (its trt.ComputeCapability enum): Turing
# (7.5, only when named), Ampere, Ada, Blackwell desktop. No Hopper (9.0), no Jetson (7.2, 8.7).
RTX_COMPUTE_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")


def check_flavour(flavour: str) -> str:
    if flavour not in FLAVOURS:
        raise UserError(f"unknown TensorRT flavour {flavour!r}; expected one of {', '.join(FLAVOURS)}")
    return flavour


def import_flavour(flavour: str) -> ModuleType:
    """The flavour's module, or one UserError naming how to install it.

    A real install is told from NVIDIA's type stubs alone, which import as an empty
    namespace package under the name `tensorrt`."""
    name = MODULES[check_flavour(flavour)]
    hint = INSTALL_HINTS[flavour]
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise UserError(f"{name} is not installed ({exc.msg}); {hint}") from None
    if not hasattr(module, "Builder") or not hasattr(module, "Runtime"):
        raise UserError(f"{name} is not installed (only its type stubs are); {hint}")
    return module


def importable(flavour: str) -> bool:
    try:
        import_flavour(flavour)
    except UserError:
        return False
    return True


def default_flavour() -> str:
    """`tensorrt` where it is installed, else `tensorrt-rtx`."""
    return TENSORRT if importable(TENSORRT) or not importable(TENSORRT_RTX) else TENSORRT_RTX
