"""Decoding and preprocessing on the GPU (the `gpu-images` extra): nvImageCodec + CuPy.

- `decode`: nvImageCodec batched decode, with the CPU path's rules (pixel limit from the
  header, EXIF orientation) and Pillow for what it cannot decode;
- `resize`: the Pillow-exact resize + centre crop (runtime.core.resample) as a CUDA
  kernel, writing the model's batch in device memory;
- `pipeline`: files -> device batches, decode of batch i + 1 overlapping the engine on i.

`choose` decides `--decode cpu|gpu|auto`. Nothing here imports nvImageCodec or CuPy until
asked, so the runtime imports without the extra.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ....core.errors import UserError
from ....core.flavours import FLAVOURS

log = logging.getLogger(__name__)

EXTRA_HINT = "install the gpu-images extra: pip install 'convmixer-deploy[gpu-images]' (on a Jetson: the jetpack6 or jetpack7 extra, docs/jetson.md)"
# (it brings NVRTC and the CUDA headers CuPy compiles the kernel with: cuda-toolkit[nvrtc,cudart])
MODES = ("cpu", "gpu", "auto")


def nvimgcodec() -> Any:
    """The nvImageCodec module, or UserError naming the extra."""
    try:
        from nvidia import nvimgcodec as module  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise UserError(f"nvidia-nvimgcodec is not installed ({exc}); {EXTRA_HINT}") from None
    return module


def cupy() -> Any:
    """The CuPy module, or UserError naming the extra."""
    try:
        import cupy as module  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise UserError(f"CuPy is not installed ({exc}); {EXTRA_HINT}") from None
    return module


@functools.lru_cache(maxsize=8)
def _kernel_fails(device_id: int) -> str | None:
    """Why CuPy cannot compile the resize kernel for `device_id` (NVRTC or the CUDA headers
    missing, say), or None; asked once per process and device."""
    from .resize import NVRTC_OPTIONS, kernel_source

    cp = cupy()
    try:
        with cp.cuda.Device(device_id):
            cp.RawModule(code=kernel_source(), options=NVRTC_OPTIONS).get_function("resample_pass")
    except Exception as exc:  # CuPy's CompileException, or an OSError loading NVRTC
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""
        return f"the resize kernel does not compile here ({type(exc).__name__}: {first}); {EXTRA_HINT}"
    return None


def missing(backend: str, device: bool = True, device_id: int = 0) -> str | None:
    """Why the GPU path cannot run with `backend` here, or None when it can. `device=False`
    checks the backend and the extra only (a Ray driver, whose actors have the GPUs);
    otherwise the kernel must also compile for CUDA device `device_id`."""
    if backend not in FLAVOURS:  # "tensorrt" (runtime.load's name) or the flavour a runner reports
        return f"the {backend} backend runs on the CPU; the GPU path feeds TensorRT engines"
    # CuPy and the device first: importing nvImageCodec without nvJPEG2000 / nvTIFF prints
    # several lines to stderr, which a run that cannot use the GPU anyway should not show.
    try:
        cp = cupy()
        count = int(cp.cuda.runtime.getDeviceCount()) if device else 1
    except UserError as exc:
        return str(exc)
    except Exception as exc:  # CuPy raises its CUDARuntimeError without a driver or device
        return f"no CUDA device ({type(exc).__name__}: {exc})"
    if count == 0:
        return "no CUDA device"
    try:
        nvimgcodec()
    except UserError as exc:
        return str(exc)
    return _kernel_fails(device_id) if device else None


def decide(
    mode: str, backend: str, device: bool = True, no_gpu: str | None = None, device_id: int = 0
) -> tuple[str, str | None]:
    """The one rule for `--decode cpu|gpu|auto`, locally and on Ray: ("cpu" or "gpu", why the
    GPU path cannot run here or None). `gpu` that cannot run is a UserError; `auto` takes
    the GPU where it can. `device` and `device_id` as for `missing`; a Ray driver checks the
    extra only and says `no_gpu` when its actors get no GPU."""
    if mode not in MODES:
        raise UserError(f"--decode {mode}: expected one of {', '.join(MODES)}")
    why = None if mode == "cpu" else (missing(backend, device, device_id=device_id) or no_gpu)
    if mode == "gpu" and why:
        raise UserError(f"--decode gpu: {why}")
    return ("gpu" if mode != "cpu" and why is None else "cpu"), why


def choose(mode: str, backend: str, device_id: int = 0) -> str:
    """`--decode` -> "cpu" or "gpu" for a local run on CUDA device `device_id` (`decide`), logged once."""
    used, why = decide(mode, backend, device_id=device_id)
    reason = f"; the GPU path cannot run here: {why}" if mode == "auto" and why else ""
    log.log(
        logging.DEBUG if mode == "cpu" else logging.INFO,  # said when the run chose, not when told
        "decoding on the %s (--decode %s)%s",
        "GPU with nvImageCodec" if used == "gpu" else "CPU with Pillow",
        mode,
        reason,
    )
    return used
