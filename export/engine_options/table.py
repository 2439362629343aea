"""The table: one entry per engine build option, with the small functions that are its own.

OPTIONS lists every entry; the options TensorRT-RTX refuses (timing cache, compatibility,
DLA) are written in tensorrt_only.py. The entries' order is the order of the trtexec
arguments, of the checks and of the config calls; the command line lists the flags in this
order too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.app.cli.options import whole
from runtime.core.errors import UserError
from runtime.core.flavours import FLAVOURS, RTX_COMPUTE_CAPABILITIES, TENSORRT, TENSORRT_RTX, import_flavour
from runtime.core.manifest import INPUT_NAME

from ..shapes import Profile
from .option import Build, EngineOption, EngineOptions, Model
from .tensorrt_only import DLA_CORE, HARDWARE_COMPATIBILITY, TIMING_CACHE, VERSION_COMPATIBLE

# What a tensorrt-rtx build targets when --compute-capability is not given: every target but
# Turing 7.5, which NVIDIA leaves out of portable engines unless it is named (it costs speed).
RTX_DEFAULT_TARGETS = tuple(cc for cc in RTX_COMPUTE_CAPABILITIES if cc != "7.5")


# --shapes: optimization profiles (export/shapes.py parses and checks each one)


def _check_profiles(o: EngineOptions, m: Model) -> None:
    if not o.profiles:
        raise UserError("at least one --shapes profile is needed")
    for profile in o.profiles:
        profile.validate(m.patch_size, m.input_spec)


def _apply_profiles(b: Build, o: EngineOptions) -> None:
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = import_flavour(b.flavour)
    for profile in o.profiles:
        p = b.builder.create_optimization_profile()
        p.set_shape(INPUT_NAME, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)), trt.Dims(list(profile.max)))
        if b.config.add_optimization_profile(p) < 0:
            raise UserError(f"{b.flavour} rejected optimization profile {profile.spec()}")


def _trtexec_profiles(o: EngineOptions) -> list[str]:
    args = []
    for p in o.profiles:  # trtexec takes one min/opt/max triple per profile, in order
        for kind, shape in (("min", p.min), ("opt", p.opt), ("max", p.max)):
            args.append(f"--{kind}Shapes={INPUT_NAME}:{'x'.join(map(str, shape))}")
    return args


PROFILES = EngineOption(
    "profiles",
    "--shapes",
    {
        "action": "append",
        "default": [],
        "metavar": "MIN:OPT:MAX",
        "help": "optimization profile, e.g. 1x3x224x224:32x3x224x224:64x3x224x224; repeat for "
        "several resolution buckets (default: batch 1..64, opt 32, at the model's input size)",
    },
    parse=lambda specs: [Profile.parse(s) for s in specs],  # none: the model's default, filled in when checked
    check=_check_profiles,
    apply=_apply_profiles,
    trtexec=_trtexec_profiles,
    sidecar="profiles",
    record=lambda o, _: [p.to_dict() for p in o.profiles],
)


# --flavour: which library builds (its rules are every entry's refused_by and flavour_rule)


FLAVOUR = EngineOption(
    "flavour",
    "--flavour",
    {"choices": list(FLAVOURS), "help": "TensorRT library (default: tensorrt where installed, else tensorrt-rtx)"},
    sidecar="flavour",
    record=lambda o, _: str(o.flavour),
)


# --compute-capability: the GPUs a tensorrt-rtx engine is built for


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


def rtx_targets(options: EngineOptions) -> list[str]:
    """The compute capabilities an RTX engine is built for: those asked for, else the default set."""
    return list(options.compute_capabilities or RTX_DEFAULT_TARGETS)


def _rtx_targets_only(o: EngineOptions, flavour: str) -> None:
    for cc in o.compute_capabilities if flavour == TENSORRT_RTX else []:
        if cc not in RTX_COMPUTE_CAPABILITIES:
            raise UserError(
                f"--compute-capability {cc}: {flavour} targets only {', '.join(RTX_COMPUTE_CAPABILITIES)} "
                "(RTX desktop GPUs: no Hopper 9.0, no Jetson); build with --flavour tensorrt on that GPU"
            )


def _apply_targets(b: Build, o: EngineOptions) -> None:
    # RTX-only API (IBuilderConfig.num_compute_capabilities / set_compute_capability and the
    # ComputeCapability enum): not in TensorRT's stubs, hence Any. Set explicitly even for the
    # default set, so that the sidecar records what the library was told.
    if b.flavour != TENSORRT_RTX:
        return
    trt: Any = import_flavour(b.flavour)
    config: Any = b.config
    targets = rtx_targets(o)
    config.num_compute_capabilities = len(targets)
    for i, cc in enumerate(targets):
        member = getattr(trt.ComputeCapability, "SM" + cc.replace(".", ""), None)
        if member is None or not config.set_compute_capability(member, i):
            raise UserError(f"{b.flavour} {trt.__version__} refused target compute capability {cc}")


COMPUTE_CAPABILITIES = EngineOption(
    "compute_capabilities",
    "--compute-capability",
    {
        "metavar": "CC,...",
        "help": "tensorrt-rtx: target GPUs, e.g. 8.6,8.9,12.0 (default 8.0,8.6,8.9,12.0,12.1; 7.5 only when named)",
    },
    parse=lambda text: parse_compute_capabilities(text) if text else [],
    refused_by={
        TENSORRT: ": it builds for the GPU it runs on (see --hardware-compatibility); "
        "target compute capabilities are a tensorrt-rtx option"
    },
    flavour_rule=_rtx_targets_only,
    apply=_apply_targets,
    sidecar="target_compute_capabilities",  # on tensorrt: the GPU it was built on
    record=lambda o, gpu_cc: rtx_targets(o) if o.flavour == TENSORRT_RTX else [gpu_cc or "?"],
)


# --workspace, --opt-level: builder resources and effort


def _check_workspace(o: EngineOptions, m: Model) -> None:
    if o.workspace_mib is not None and o.workspace_mib < 1:
        raise UserError(f"--workspace must be a positive number of MiB, got {o.workspace_mib}")


def _apply_workspace(b: Build, o: EngineOptions) -> None:
    if o.workspace_mib:
        b.config.set_memory_pool_limit(b.member("MemoryPoolType.WORKSPACE", "--workspace"), o.workspace_mib * 2**20)


WORKSPACE = EngineOption(
    "workspace_mib",
    "--workspace",
    {
        "type": whole("--workspace", 1, 1 << 20),
        "metavar": "MIB",
        "help": "builder workspace limit in MiB (keep small on Jetson)",
    },
    check=_check_workspace,
    apply=_apply_workspace,
    trtexec=lambda o: [f"--memPoolSize=workspace:{o.workspace_mib}"] if o.workspace_mib else [],
    sidecar="options.workspace_mib",
)


def _check_opt_level(o: EngineOptions, m: Model) -> None:
    if not 0 <= o.opt_level <= 5:
        raise UserError(f"--opt-level must be 0..5, got {o.opt_level}")


def _apply_opt_level(b: Build, o: EngineOptions) -> None:
    b.config.builder_optimization_level = o.opt_level


OPT_LEVEL = EngineOption(
    "opt_level",
    "--opt-level",
    {"type": whole("--opt-level", 0, 5), "help": "builder optimization level 0..5 (default 3)"},
    check=_check_opt_level,
    apply=_apply_opt_level,
    trtexec=lambda o: [f"--builderOptimizationLevel={o.opt_level}"] if o.opt_level != 3 else [],
    sidecar="options.opt_level",
)


# --tf32: TF32 maths in FP32 layers


def _apply_tf32(b: Build, o: EngineOptions) -> None:
    if not o.tf32:  # TF32 is on by default; the FP32 parity tolerance assumes true FP32 maths
        b.config.clear_flag(b.member("BuilderFlag.TF32", "--tf32"))


TF32 = EngineOption(
    "tf32",
    "--tf32",
    {"action": "store_true", "help": "allow TF32 maths in FP32 layers (off by default: true FP32)"},
    apply=_apply_tf32,
    trtexec=lambda o: [] if o.tf32 else ["--noTF32"],  # as the Python build: true FP32 unless --tf32
    sidecar="tf32",
)

OPTIONS: tuple[EngineOption, ...] = (
    PROFILES,
    FLAVOUR,
    COMPUTE_CAPABILITIES,
    WORKSPACE,
    OPT_LEVEL,
    TIMING_CACHE,
    HARDWARE_COMPATIBILITY,
    VERSION_COMPATIBLE,
    DLA_CORE,
    TF32,
)
