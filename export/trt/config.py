"""A builder config from EngineOptions: the settings every build has, then each option's own
config call, from the table (export.engine_options).

Options were checked against the flavour before (export.engine_options.validate_flavour), so
an option reaching here is one the flavour really applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.core.errors import UserError
from runtime.core.flavours import import_flavour

from ..engine_options import Build, EngineOptions, apply_options
from .progress import progress_monitor_class

if TYPE_CHECKING:
    import tensorrt as trt


def config_from_options(flavour: str, builder: trt.Builder, options: EngineOptions) -> Build:
    """The builder config for `options`, with the builder and flavour it belongs to (the
    options' after-build steps, such as saving the timing cache, need all three)."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = import_flavour(flavour)
    config = builder.create_builder_config()
    if config is None:
        raise UserError(f"{flavour} could not create a builder config")
    # DETAILED keeps per-layer types and source nodes: RTX logs them, TensorRT's inspector reads them.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    build = Build(flavour, builder, config)
    apply_options(build, options)
    monitor_cls = progress_monitor_class(flavour)
    if monitor_cls is not None:
        config.progress_monitor = monitor_cls()
    return build
