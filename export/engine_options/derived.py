"""Everything that iterates the table: the command line, the checks, the builder config,
the trtexec line and the sidecar. None of it names an option; each entry says what to do."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path
from typing import Any

from runtime.core.errors import UserError
from runtime.core.flavours import check_flavour
from runtime.core.manifest import InputSpec

from .option import Build, EngineOption, EngineOptions, Model
from .table import OPTIONS

OPTIONS_KEY = "options."  # EngineOption.sidecar prefix: a key of the sidecar's `options` dict


def _default(option: EngineOption) -> Any:
    """The EngineOptions field's default (dataclasses.MISSING when it has none)."""
    f = EngineOptions.__dataclass_fields__[option.name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def is_set(option: EngineOption, options: EngineOptions) -> bool:
    """Whether `options` asks for something other than this option's default."""
    return bool(getattr(options, option.name) != _default(option))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per entry, its value stored under the EngineOptions field's name; a flag's
    default is the field's, so the command line and the Python API cannot disagree."""
    for option in OPTIONS:
        keywords = dict(option.cli)
        default = _default(option)
        if default is not dataclasses.MISSING:
            keywords.setdefault("default", default)
        parser.add_argument(option.flag, dest=option.name, **keywords)


def options_from_args(args: argparse.Namespace) -> EngineOptions:
    """EngineOptions from a namespace that add_arguments filled."""
    values = {o.name: (o.parse or (lambda v: v))(getattr(args, o.name)) for o in OPTIONS}
    return EngineOptions(**values)


def validate(
    options: EngineOptions, patch_size: int, precision: str, activation: str, input_spec: InputSpec | None = None
) -> None:
    """Check every option before TensorRT is touched (the flavour's rules too, when it is set)."""
    model = Model(patch_size, precision, activation, input_spec or InputSpec())
    for option in OPTIONS:
        if option.check is not None:
            option.check(options, model)
        if option.name == "flavour" and options.flavour is not None:  # its rules, at its place in the table
            validate_flavour(options, options.flavour)


def validate_flavour(options: EngineOptions, flavour: str) -> None:
    """Refuse, in one line naming the flavour, an option it ignores or cannot do: nothing is
    ever recorded in a sidecar as applied when the library would silently drop it."""
    check_flavour(flavour)
    for option in OPTIONS:
        why = option.refused_by.get(flavour)
        if why is not None and is_set(option, options):
            raise UserError(f"{flavour} does not support {option.flag}{why}")
    for option in OPTIONS:
        if option.flavour_rule is not None:
            option.flavour_rule(options, flavour)


def apply_options(build: Build, options: EngineOptions) -> None:
    """Set every option on the build's config (after validate_flavour: only what the flavour applies)."""
    for option in OPTIONS:
        if option.apply is not None:
            option.apply(build, options)


def after_build(build: Build, options: EngineOptions) -> None:
    """Each option's step once the engine is saved (the timing cache merges what this build learnt)."""
    for option in OPTIONS:
        if option.after_build is not None:
            option.after_build(build, options)


def trtexec_command(onnx_path: Path, engine_path: Path, options: EngineOptions) -> str:
    """The trtexec line that builds the same engine. No precision flags: precision lives
    in the graph (TensorRT 11 removed --fp16/--int8/--calib; 10.x honours --stronglyTyped)."""
    args = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}", "--stronglyTyped"]
    for option in OPTIONS:
        if option.trtexec is not None:
            args += option.trtexec(options)
    return " ".join(shlex.quote(a) for a in args)


def sidecar_fields(options: EngineOptions, gpu_capability: str | None) -> dict[str, Any]:
    """The sidecar's (EngineMeta's) fields for these options, `options` holding those that
    have no field of their own. `gpu_capability`: of the GPU built on, None without one."""
    fields: dict[str, Any] = {"options": {}}
    for option in OPTIONS:
        if option.sidecar is None:
            continue
        value = option.record(options, gpu_capability) if option.record else getattr(options, option.name)
        if option.sidecar.startswith(OPTIONS_KEY):
            fields["options"][option.sidecar[len(OPTIONS_KEY) :]] = value
        else:
            fields[option.sidecar] = value
    return fields
