"""Engine build options, one table: each option's flag, checks, builder-config call,
trtexec argument and sidecar field sit together, in one entry of `OPTIONS`.

This is Polygraphy's CreateConfig as a table. Adding an option is one EngineOptions field
and one entry; everything else is derived by iterating the table:

- `option.py`:        EngineOptions (one build's options), EngineOption (an entry), Build
- `table.py`:         OPTIONS, and the entries every flavour takes (shapes, flavour, targets, ...)
- `tensorrt_only.py`: the entries TensorRT-RTX refuses (timing cache, compatibility, DLA)
- `derived.py`:       the command line, validate/validate_flavour, the config calls, the
                      trtexec line and the sidecar fields, each a loop over OPTIONS

Nothing here imports TensorRT at import time, so options are checked (and `--print-trtexec`
works) on any machine. Optimization profiles are parsed and checked in export/shapes.py.
"""

from .derived import (
    add_arguments,
    after_build,
    apply_options,
    is_set,
    options_from_args,
    sidecar_fields,
    trtexec_command,
    validate,
    validate_flavour,
)
from .option import Build, EngineOption, EngineOptions, Model
from .table import OPTIONS, RTX_DEFAULT_TARGETS, parse_compute_capabilities, rtx_targets
from .tensorrt_only import DLA_ACTIVATIONS, HARDWARE_LEVELS

__all__ = [
    "DLA_ACTIVATIONS",
    "HARDWARE_LEVELS",
    "OPTIONS",
    "RTX_DEFAULT_TARGETS",
    "Build",
    "EngineOption",
    "EngineOptions",
    "Model",
    "add_arguments",
    "after_build",
    "apply_options",
    "is_set",
    "options_from_args",
    "parse_compute_capabilities",
    "rtx_targets",
    "sidecar_fields",
    "trtexec_command",
    "validate",
    "validate_flavour",
]
