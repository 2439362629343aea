"""What an engine option is: the EngineOptions of one build, and the EngineOption entry
that describes one of its fields (flag, checks, config call, trtexec argument, sidecar field).

`Build` is what an entry's `apply` works on. Nothing here imports TensorRT at import time;
`Build.member` looks TensorRT names up at build time and is the one place where an option the
installed library lacks fails (Polygraphy's try_set_flag), in one line naming the option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.core.errors import UserError
from runtime.core.flavours import import_flavour
from runtime.core.manifest import InputSpec

from ..shapes import Profile

if TYPE_CHECKING:
    import tensorrt as trt


@dataclass
class EngineOptions:
    """The options of one build; each field is described by its entry in table.OPTIONS."""

    profiles: list[Profile]
    workspace_mib: int | None = None
    opt_level: int = 3
    timing_cache: Path | None = None
    hardware_compatibility: str = "none"
    version_compatible: bool = False
    dla_core: int | None = None
    flavour: str | None = None  # runtime.core.flavours; None: default_flavour() at build time
    compute_capabilities: list[str] = field(default_factory=list)  # tensorrt-rtx targets; [] = its default set
    tf32: bool = False  # allow TF32 maths for FP32 layers (TensorRT's default is on; ours is off)


@dataclass(frozen=True)
class Model:
    """What the checks need to know about the model being built."""

    patch_size: int
    precision: str
    activation: str
    input_spec: InputSpec


@dataclass(frozen=True)
class Build:
    """What an option is applied to: one build's flavour, builder and builder config."""

    flavour: str
    builder: trt.Builder
    config: trt.IBuilderConfig

    def member(self, path: str, flag: str) -> Any:
        """`BuilderFlag.TF32` of this flavour's library, or one UserError naming the option
        when the installed library lacks it (Polygraphy's try_set_flag)."""
        lib = import_flavour(self.flavour)
        value: Any = lib
        for part in path.split("."):
            value = getattr(value, part, None)
            if value is None:
                version = getattr(lib, "__version__", "?")
                raise UserError(f"{flag}: {self.flavour} {version} has no {path}, so it cannot apply this option")
        return value


Apply = Callable[[Build, EngineOptions], None]


@dataclass(frozen=True)
class EngineOption:
    """One build option, everything about it in one place."""

    name: str  # its EngineOptions field
    flag: str  # its command-line flag
    cli: Mapping[str, Any]  # argparse add_argument keywords (help, type, choices, metavar, action)
    parse: Callable[[Any], Any] | None = None  # command-line value -> field value (default: as it is)
    check: Callable[[EngineOptions, Model], None] | None = None  # ranges and rules against the model
    refused_by: Mapping[str, str] = field(default_factory=dict)  # flavour -> why it cannot honour a set value
    flavour_rule: Callable[[EngineOptions, str], None] | None = None  # other rules of a flavour
    apply: Apply | None = None  # on the builder config, before the build
    after_build: Apply | None = None  # once the engine is saved
    trtexec: Callable[[EngineOptions], list[str]] | None = None  # trtexec's arguments for it
    sidecar: str | None = None  # EngineMeta field, or "options.KEY" in the sidecar's `options`
    record: Callable[[EngineOptions, str | None], Any] | None = None  # (options, GPU's cc) -> sidecar value
