"""The entries of the options that only TensorRT has: TensorRT-RTX refuses each one, in one
line naming it (refused_by), so the sidecar never records an option the library dropped.

- `--timing-cache`: read before the build, merged and written back after it (export/trt/timing_cache.py)
- `--hardware-compatibility`, `--version-compatible`: engines that run beyond this GPU or library
- `--dla-core`: Jetson's deep-learning accelerator, with GPU fallback
"""

from __future__ import annotations

import logging
from pathlib import Path

from runtime.app.cli.options import whole
from runtime.core.errors import UserError
from runtime.core.flavours import TENSORRT_RTX

from ..trt.timing_cache import load_timing_cache, save_timing_cache
from .option import Build, EngineOption, EngineOptions, Model

log = logging.getLogger(__name__)

# --hardware-compatibility level -> (TensorRT's HardwareCompatibilityLevel member, trtexec's name)
HARDWARE_LEVELS = {
    "none": ("NONE", ""),
    "ampere_plus": ("AMPERE_PLUS", "ampere+"),
    "same_compute_capability": ("SAME_COMPUTE_CAPABILITY", "sameComputeCapability"),  # TensorRT 10.x after 10.0
}
DLA_ACTIVATIONS = ("relu",)  # of ConvMixer's activations, only ReLU runs on DLA


# --timing-cache: read before the build, merged and written back after it (export/trt/timing_cache.py)


def _load_cache(b: Build, o: EngineOptions) -> None:
    if o.timing_cache is not None:
        load_timing_cache(b.config, o.timing_cache)


def _save_cache(b: Build, o: EngineOptions) -> None:
    if o.timing_cache is not None:
        save_timing_cache(b.config, o.timing_cache)


TIMING_CACHE = EngineOption(
    "timing_cache",
    "--timing-cache",
    {"type": Path, "metavar": "PATH", "help": "load and save a timing cache: rebuilds go faster"},
    refused_by={TENSORRT_RTX: " (it has no timing cache)"},
    apply=_load_cache,
    after_build=_save_cache,
    trtexec=lambda o: [f"--timingCacheFile={o.timing_cache}"] if o.timing_cache else [],
    sidecar="options.timing_cache",
    record=lambda o, _: str(o.timing_cache) if o.timing_cache else None,
)


# --hardware-compatibility, --version-compatible: engines that run beyond this GPU or library


def _check_hardware(o: EngineOptions, m: Model) -> None:
    if o.hardware_compatibility not in HARDWARE_LEVELS:
        raise UserError(f"--hardware-compatibility must be one of {', '.join(HARDWARE_LEVELS)}")


def _apply_hardware(b: Build, o: EngineOptions) -> None:
    if o.hardware_compatibility != "none":
        member = HARDWARE_LEVELS[o.hardware_compatibility][0]
        level = b.member(f"HardwareCompatibilityLevel.{member}", "--hardware-compatibility")
        b.config.hardware_compatibility_level = level


def _trtexec_hardware(o: EngineOptions) -> list[str]:
    name = HARDWARE_LEVELS.get(o.hardware_compatibility, ("", ""))[1]
    return [f"--hardwareCompatibilityLevel={name}"] if name else []


HARDWARE_COMPATIBILITY = EngineOption(
    "hardware_compatibility",
    "--hardware-compatibility",
    {"choices": list(HARDWARE_LEVELS), "help": "build an engine that runs on other GPU architectures (slower; default none)"},
    check=_check_hardware,
    refused_by={
        TENSORRT_RTX: " (it has no hardware compatibility levels; choose the target GPUs with --compute-capability)"
    },
    apply=_apply_hardware,
    trtexec=_trtexec_hardware,
    sidecar="hardware_compatibility",
)


def _apply_version_compatible(b: Build, o: EngineOptions) -> None:
    if o.version_compatible:
        b.config.set_flag(b.member("BuilderFlag.VERSION_COMPATIBLE", "--version-compatible"))


VERSION_COMPATIBLE = EngineOption(
    "version_compatible",
    "--version-compatible",
    {"action": "store_true", "help": "engine runs on later TensorRT of the same major"},
    refused_by={TENSORRT_RTX: " (its engines cannot carry a lean runtime)"},
    apply=_apply_version_compatible,
    trtexec=lambda o: ["--versionCompatible"] if o.version_compatible else [],
    sidecar="version_compatible",
)


# --dla-core: Jetson's deep-learning accelerator, with GPU fallback


def _check_dla(o: EngineOptions, m: Model) -> None:
    if o.dla_core is None:
        return
    if o.dla_core < 0:
        raise UserError(f"--dla-core must be 0 or more, got {o.dla_core}")
    dynamic = [p.spec() for p in o.profiles if not p.is_static]
    if dynamic:
        raise UserError(
            f"DLA needs static shapes (min = opt = max), but --shapes {dynamic[0]} is dynamic; "
            "give one fixed shape, e.g. --shapes 8x3x224x224:8x3x224x224:8x3x224x224"
        )
    if m.precision == "fp32":
        raise UserError("DLA runs FP16 or INT8 only; build from model.fp16.onnx or model.int8.onnx")
    if o.hardware_compatibility != "none" or o.version_compatible:
        raise UserError("DLA engines cannot be hardware- or version-compatible")
    if m.activation not in DLA_ACTIVATIONS:
        log.warning(
            "DLA runs ReLU but not GELU: this %s model's activations will fall back to the GPU, with "
            "DLA<->GPU copies around each one. convmixer_768_32 (ReLU) is the DLA candidate.",
            m.activation.upper(),
        )


def _apply_dla(b: Build, o: EngineOptions) -> None:
    if o.dla_core is None:
        return
    cores = b.builder.num_DLA_cores
    if cores == 0:
        raise UserError("--dla-core given but this device has no DLA (DLA exists on Jetson AGX/NX Orin and Xavier)")
    if o.dla_core >= cores:
        raise UserError(f"--dla-core {o.dla_core}: this device has {cores} DLA cores")
    b.config.default_device_type = b.member("DeviceType.DLA", "--dla-core")
    b.config.DLA_core = o.dla_core
    b.config.set_flag(b.member("BuilderFlag.GPU_FALLBACK", "--dla-core"))


DLA_CORE = EngineOption(
    "dla_core",
    "--dla-core",
    {
        "type": whole("--dla-core", 0, 15),
        "metavar": "N",
        "help": "Jetson: run on DLA core N with GPU fallback (static shapes)",
    },
    check=_check_dla,
    refused_by={TENSORRT_RTX: " (it has no DLA; DLA exists on Jetson, use --flavour tensorrt)"},
    apply=_apply_dla,
    trtexec=lambda o: [f"--useDLACore={o.dla_core}", "--allowGPUFallback"] if o.dla_core is not None else [],
    sidecar="dla_core",
)
