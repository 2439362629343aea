"""Engine build options: optimization profiles, DLA rules and the equivalent trtexec line.

Nothing here imports TensorRT, so options are validated (and `--print-trtexec` works)
on any machine before a build starts.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import UserError
from runtime.manifest import INPUT_NAME

log = logging.getLogger(__name__)

Shape = tuple[int, int, int, int]
HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")
DLA_ACTIVATIONS = ("relu",)  # of ConvMixer's activations, only ReLU runs on DLA
DEFAULT_MAX_BATCH = 64
DEFAULT_OPT_BATCH = 32


def _parse_shape(text: str, spec: str) -> Shape:
    parts = text.lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise UserError(f"--shapes {spec}: {text!r} is not NxCxHxW (e.g. 8x3x224x224)")
    n, c, h, w = (int(p) for p in parts)
    return n, c, h, w


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

    def validate(self, patch_size: int) -> None:
        spec = self.spec()
        for shape in (self.min, self.opt, self.max):
            if shape[1] != 3:
                raise UserError(f"--shapes {spec}: channels must be 3, got {shape[1]}")
            if shape[0] < 1:
                raise UserError(f"--shapes {spec}: batch must be at least 1")
            if min(shape[2:]) < patch_size:
                raise UserError(f"--shapes {spec}: height and width must be at least the patch size {patch_size}")
        for axis, name in enumerate(("batch", "channels", "height", "width")):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise UserError(f"--shapes {spec}: {name} must satisfy min <= opt <= max")

    def spec(self) -> str:
        return ":".join("x".join(map(str, s)) for s in (self.min, self.opt, self.max))

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def default_profile(input_size: int) -> Profile:
    s = input_size
    return Profile((1, 3, s, s), (DEFAULT_OPT_BATCH, 3, s, s), (DEFAULT_MAX_BATCH, 3, s, s))


@dataclass
class EngineOptions:
    profiles: list[Profile]
    workspace_mib: int | None = None
    opt_level: int = 3
    timing_cache: Path | None = None
    hardware_compatibility: str = "none"
    version_compatible: bool = False
    dla_core: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "workspace_mib": self.workspace_mib,
            "opt_level": self.opt_level,
            "timing_cache": str(self.timing_cache) if self.timing_cache else None,
            "hardware_compatibility": self.hardware_compatibility,
            "version_compatible": self.version_compatible,
            "dla_core": self.dla_core,
        }


def validate(options: EngineOptions, patch_size: int, precision: str, activation: str) -> None:
    """Check every option before TensorRT is touched."""
    if not options.profiles:
        raise UserError("at least one --shapes profile is needed")
    for profile in options.profiles:
        profile.validate(patch_size)
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


def engine_path_for(onnx_path: Path) -> Path:
    """model.fp16.onnx -> model.fp16.engine; the FP32 model.onnx -> model.fp32.engine."""
    name = onnx_path.name[: -len(".onnx")]
    if not (name.endswith(".fp16") or name.endswith(".int8")):
        name += ".fp32"
    return onnx_path.with_name(name + ".engine")


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
    return " ".join(shlex.quote(a) for a in args)
