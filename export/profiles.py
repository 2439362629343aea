"""Engine build options: optimization profiles, flavour and DLA rules, the equivalent trtexec line.

Nothing here imports TensorRT, so options are validated (and `--print-trtexec` works)
on any machine before a build starts.

Profiles are layout-aware: a float32 model takes NCHW `[batch, 3, height, width]`, a model
exported with `--input uint8` takes NHWC `[batch, height, width, 3]` (runtime.manifest.InputSpec),
and shapes are given and checked in the model's own layout.
"""

from __future__ import annotations

import logging
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import UserError
from runtime.flavours import RTX_COMPUTE_CAPABILITIES, TENSORRT, TENSORRT_RTX, check_flavour
from runtime.manifest import INPUT_NAME, InputSpec

log = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]
HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")
DLA_ACTIVATIONS = ("relu",)  # of ConvMixer's activations, only ReLU runs on DLA
DEFAULT_MAX_BATCH = 64
DEFAULT_OPT_BATCH = 32
MAX_INPUT_ELEMENTS = 2**31 - 1  # beyond it, sizes overflow int32 and an input is 8 GiB and more
# What a tensorrt-rtx build targets when --compute-capability is not given: every target but
# Turing 7.5, which NVIDIA leaves out of portable engines unless it is named (it costs speed).
RTX_DEFAULT_TARGETS = tuple(cc for cc in RTX_COMPUTE_CAPABILITIES if cc != "7.5")


def _parse_shape(text: str, spec: str) -> Shape:
    parts = text.lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise UserError(
            f"--shapes {spec}: {text!r} is not four sizes: NxCxHxW (e.g. 8x3x224x224), or NxHxWxC "
            "(8x224x224x3) for a model exported with --input uint8"
        )
    a, b, c, d = (int(p) for p in parts)
    return a, b, c, d


def _axes(spec: InputSpec) -> tuple[int, int, int]:
    """(channel, height, width) axes of the input in this model's layout."""
    return (3, 1, 2) if spec.layout == "NHWC" else (1, 2, 3)


@dataclass(frozen=True)
class Profile:
    min: Shape
    opt: Shape
    max: Shape

    @classmethod
    def parse(cls, spec: str) -> Profile:
        """'1x3x224x224:32x3x224x224:64x3x224x224' (MIN:OPT:MAX)."""
        parts = spec.split(":")
        if len(parts) != 3:
            raise UserError(f"--shapes {spec}: expected MIN:OPT:MAX, e.g. 1x3x224x224:32x3x224x224:64x3x224x224")
        lo, opt, hi = (_parse_shape(p, spec) for p in parts)
        return cls(lo, opt, hi)

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    def validate(self, patch_size: int, input_spec: InputSpec | None = None) -> None:
        """Check the shapes in the model's layout (NCHW, or NHWC for a uint8-input model)."""
        input_spec = input_spec or InputSpec()
        spec, layout = self.spec(), input_spec.layout
        c_axis, h_axis, w_axis = _axes(input_spec)
        for shape in (self.min, self.opt, self.max):
            if shape[c_axis] != 3:
                raise UserError(
                    f"--shapes {spec}: channels must be 3 | got {shape[c_axis]} on axis {c_axis} | "
                    f"this model takes {input_spec.dtype} {layout}"
                )
            if shape[0] < 1:
                raise UserError(f"--shapes {spec}: batch must be at least 1")
            if min(shape[h_axis], shape[w_axis]) < patch_size:
                raise UserError(
                    f"--shapes {spec}: height and width ({layout}) must be at least the patch size {patch_size}"
                )
            if math.prod(shape) > MAX_INPUT_ELEMENTS:
                raise UserError(
                    f"--shapes {spec}: {'x'.join(map(str, shape))} is {math.prod(shape):,} elements; "
                    f"an input holds at most {MAX_INPUT_ELEMENTS:,} (2^31-1)"
                )
        names = {0: "batch", c_axis: "channels", h_axis: "height", w_axis: "width"}
        for axis in range(4):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise UserError(f"--shapes {spec}: {names[axis]} must satisfy min <= opt <= max")

    def spec(self) -> str:
        return ":".join("x".join(map(str, s)) for s in (self.min, self.opt, self.max))

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def default_profile(input_size: int, input_spec: InputSpec | None = None) -> Profile:
    """Batch 1..64 (opt 32) at the model's input size, in the model's input layout."""
    spec, s = input_spec or InputSpec(), input_size
    return Profile(spec.shape(1, s, s), spec.shape(DEFAULT_OPT_BATCH, s, s), spec.shape(DEFAULT_MAX_BATCH, s, s))


def parse_compute_capabilities(text: str) -> list[str]:
    """'8.6,8.9,12.0' -> ['8.6', '8.9', '12.0'] (checked against the flavour later)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    for item in items:
        major, _, minor = item.partition(".")
        if not (major.isdigit() and minor.isdigit()):
            raise UserError(f"--compute-capability {text}: {item!r} is not MAJOR.MINOR (e.g. 8.6,8.9,12.0)")
    if not items:
        raise UserError("--compute-capability needs at least one MAJOR.MINOR, e.g. 8.6")
    return items


@dataclass
class EngineOptions:
    profiles: list[Profile]
    workspace_mib: int | None = None
    opt_level: int = 3
    timing_cache: Path | None = None
    hardware_compatibility: str = "none"
    version_compatible: bool = False
    dla_core: int | None = None
    flavour: str | None = None  # runtime.flavours; None: default_flavour() at build time
    compute_capabilities: list[str] = field(default_factory=list)  # tensorrt-rtx targets; [] = its default set
    tf32: bool = False  # allow TF32 maths for FP32 layers (TensorRT's default is on; ours is off)

    def to_dict(self) -> dict[str, object]:
        """The sidecar's `options`: only the settings EngineMeta has no field for (flavour,
        tf32, compatibility, DLA core and target compute capabilities are fields there)."""
        return {
            "workspace_mib": self.workspace_mib,
            "opt_level": self.opt_level,
            "timing_cache": str(self.timing_cache) if self.timing_cache else None,
        }


def validate(
    options: EngineOptions, patch_size: int, precision: str, activation: str, input_spec: InputSpec | None = None
) -> None:
    """Check every option before TensorRT is touched (the flavour's rules too, when it is set)."""
    if not options.profiles:
        raise UserError("at least one --shapes profile is needed")
    for profile in options.profiles:
        profile.validate(patch_size, input_spec)
    if options.flavour is not None:
        validate_flavour(options, options.flavour)
    if not 0 <= options.opt_level <= 5:
        raise UserError(f"--opt-level must be 0..5, got {options.opt_level}")
    if options.workspace_mib is not None and options.workspace_mib < 1:
        raise UserError(f"--workspace must be a positive number of MiB, got {options.workspace_mib}")
    if options.hardware_compatibility not in HARDWARE_LEVELS:
        raise UserError(f"--hardware-compatibility must be one of {', '.join(HARDWARE_LEVELS)}")
    if options.dla_core is not None:
        if options.dla_core < 0:
            raise UserError(f"--dla-core must be 0 or more, got {options.dla_core}")
        dynamic = [p.spec() for p in options.profiles if not p.is_static]
        if dynamic:
            raise UserError(
                f"DLA needs static shapes (min = opt = max), but --shapes {dynamic[0]} is dynamic; "
                "give one fixed shape, e.g. --shapes 8x3x224x224:8x3x224x224:8x3x224x224"
            )
        if precision == "fp32":
            raise UserError("DLA runs FP16 or INT8 only; build from model.fp16.onnx or model.int8.onnx")
        if options.hardware_compatibility != "none" or options.version_compatible:
            raise UserError("DLA engines cannot be hardware- or version-compatible")
        if activation not in DLA_ACTIVATIONS:
            log.warning(
                "DLA runs ReLU but not GELU: this %s model's activations will fall back to the GPU, with "
                "DLA<->GPU copies around each one. convmixer_768_32 (ReLU) is the DLA candidate.",
                activation.upper(),
            )


def validate_flavour(options: EngineOptions, flavour: str) -> None:
    """Refuse, in one line naming the flavour, an option it ignores or cannot do: nothing is
    ever recorded in a sidecar as applied when the library would silently drop it."""
    check_flavour(flavour)
    if flavour == TENSORRT_RTX:
        refused = [
            (
                options.hardware_compatibility != "none",
                "--hardware-compatibility (it has no hardware compatibility "
                "levels; choose the target GPUs with --compute-capability)",
            ),
            (options.version_compatible, "--version-compatible (its engines cannot carry a lean runtime)"),
            (options.dla_core is not None, "--dla-core (it has no DLA; DLA exists on Jetson, use --flavour tensorrt)"),
            (options.timing_cache is not None, "--timing-cache (it has no timing cache)"),
        ]
        for bad, what in refused:
            if bad:
                raise UserError(f"{flavour} does not support {what}")
        for cc in options.compute_capabilities:
            if cc not in RTX_COMPUTE_CAPABILITIES:
                raise UserError(
                    f"--compute-capability {cc}: {flavour} targets only {', '.join(RTX_COMPUTE_CAPABILITIES)} "
                    "(RTX desktop GPUs: no Hopper 9.0, no Jetson); build with --flavour tensorrt on that GPU"
                )
    elif flavour == TENSORRT and options.compute_capabilities:
        raise UserError(
            f"{flavour} does not support --compute-capability: it builds for the GPU it runs on "
            "(see --hardware-compatibility); target compute capabilities are a tensorrt-rtx option"
        )


def engine_path_for(onnx_path: Path) -> Path:
    """model.fp16.onnx -> model.fp16.engine; the FP32 model.onnx -> model.fp32.engine."""
    from runtime.parity import precision_of

    precision = precision_of(onnx_path.name)
    base = onnx_path.name[: -len(".onnx")] if onnx_path.name.endswith(".onnx") else onnx_path.name
    if base.endswith(f".{precision}"):
        base = base[: -len(precision) - 1]
    return onnx_path.with_name(f"{base}.{precision}.engine")


def trtexec_command(onnx_path: Path, engine_path: Path, options: EngineOptions) -> str:
    """The trtexec line that builds the same engine. No precision flags: precision lives
    in the graph (TensorRT 11 removed --fp16/--int8/--calib; 10.x honours --stronglyTyped)."""
    args = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}", "--stronglyTyped"]
    for p in options.profiles:  # trtexec takes one min/opt/max triple per profile, in order
        args += [
            f"--minShapes={INPUT_NAME}:{'x'.join(map(str, p.min))}",
            f"--optShapes={INPUT_NAME}:{'x'.join(map(str, p.opt))}",
            f"--maxShapes={INPUT_NAME}:{'x'.join(map(str, p.max))}",
        ]
    if options.workspace_mib:
        args.append(f"--memPoolSize=workspace:{options.workspace_mib}")
    if options.opt_level != 3:
        args.append(f"--builderOptimizationLevel={options.opt_level}")
    if options.timing_cache:
        args.append(f"--timingCacheFile={options.timing_cache}")
    if options.hardware_compatibility == "ampere_plus":
        args.append("--hardwareCompatibilityLevel=ampere+")
    elif options.hardware_compatibility == "same_compute_capability":
        args.append("--hardwareCompatibilityLevel=sameComputeCapability")
    if options.version_compatible:
        args.append("--versionCompatible")
    if options.dla_core is not None:
        args += [f"--useDLACore={options.dla_core}", "--allowGPUFallback"]
    if not options.tf32:
        args.append("--noTF32")  # as the Python build: FP32 layers stay true FP32 unless --tf32
    return " ".join(shlex.quote(a) for a in args)
