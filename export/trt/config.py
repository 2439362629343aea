"""A builder config from EngineOptions: profiles, TF32, flavour-specific targets and options.

Options were checked against the flavour before (export.profiles.validate_flavour), so an
option reaching here is one the flavour really applies.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from runtime.errors import UserError
from runtime.flavours import TENSORRT_RTX, import_flavour
from runtime.manifest import INPUT_NAME

from ..profiles import RTX_DEFAULT_TARGETS, EngineOptions
from .progress import progress_monitor_class

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)


def rtx_targets(options: EngineOptions) -> list[str]:
    """The compute capabilities an RTX engine is built for: those asked for, else the default set."""
    return list(options.compute_capabilities or RTX_DEFAULT_TARGETS)


def _set_rtx_targets(flavour: str, config: Any, targets: list[str]) -> None:
    # RTX-only API (IBuilderConfig.num_compute_capabilities / set_compute_capability and the
    # ComputeCapability enum): not in TensorRT's stubs, hence Any. Set explicitly even for the
    # default set, so that the sidecar records what the library was told.
    trt: Any = import_flavour(flavour)
    config.num_compute_capabilities = len(targets)
    for i, cc in enumerate(targets):
        member = getattr(trt.ComputeCapability, "SM" + cc.replace(".", ""), None)
        if member is None or not config.set_compute_capability(member, i):
            raise UserError(f"{flavour} {trt.__version__} refused target compute capability {cc}")


def config_from_options(
    flavour: str, builder: trt.Builder, options: EngineOptions
) -> tuple[trt.IBuilderConfig, trt.ITimingCache | None]:
    """The builder config for `options`, and the timing cache it loaded (TensorRT only)."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = import_flavour(flavour)
    config = builder.create_builder_config()
    if config is None:
        raise UserError(f"{flavour} could not create a builder config")
    # DETAILED keeps per-layer types and source nodes: RTX logs them, TensorRT's inspector reads them.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if not options.tf32:
        # TF32 is on by default; the FP32 parity tolerance assumes true FP32 maths.
        config.clear_flag(trt.BuilderFlag.TF32)
    if options.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib * 2**20)
    config.builder_optimization_level = options.opt_level
    for profile in options.profiles:
        p = builder.create_optimization_profile()
        p.set_shape(INPUT_NAME, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)), trt.Dims(list(profile.max)))
        if config.add_optimization_profile(p) < 0:
            raise UserError(f"{flavour} rejected optimization profile {profile.spec()}")
    if flavour == TENSORRT_RTX:
        _set_rtx_targets(flavour, config, rtx_targets(options))
    cache = _tensorrt_only(trt, builder, config, options)
    monitor_cls = progress_monitor_class(flavour)
    if monitor_cls is not None:
        config.progress_monitor = monitor_cls()
    return config, cache


def _tensorrt_only(
    trt: Any, builder: trt.Builder, config: trt.IBuilderConfig, options: EngineOptions
) -> trt.ITimingCache | None:
    """Timing cache, hardware/version compatibility and DLA: TensorRT options that
    validate_flavour refuses for TensorRT-RTX, so they are only ever set on TensorRT."""
    cache = None
    if options.timing_cache is not None:
        data = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
        cache = config.create_timing_cache(data)
        if cache is None or not config.set_timing_cache(cache, False):
            raise UserError(
                f"{options.timing_cache}: TensorRT could not use this timing cache (another TensorRT version?)"
            )
        log.info("timing cache %s (%s)", options.timing_cache, f"{len(data)} bytes" if data else "new")
    if options.hardware_compatibility == "ampere_plus":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    elif options.hardware_compatibility == "same_compute_capability":
        # Added in TensorRT 10.x after 10.0; older builds lack the member.
        level = getattr(trt.HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY", None)
        if level is None:
            raise UserError("this TensorRT has no same-compute-capability hardware compatibility level")
        config.hardware_compatibility_level = level
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.dla_core is not None:
        if builder.num_DLA_cores == 0:
            raise UserError("--dla-core given but this device has no DLA (DLA exists on Jetson AGX/NX Orin and Xavier)")
        if options.dla_core >= builder.num_DLA_cores:
            raise UserError(f"--dla-core {options.dla_core}: this device has {builder.num_DLA_cores} DLA cores")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    return cache
