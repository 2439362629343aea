"""One process-wide TensorRT logger per flavour, routed to the build that is running.

TensorRT-RTX keeps the first logger a process gives it and ignores later ones (with a
warning), so a logger per build would lose the second build's layer log. Instead each
flavour gets one logger object for the life of the process, and a build borrows it: while
`capture` is open, the messages it needs (the `Layers:` table, errors) go to that build's
BuildLog. A lock lets one build at a time hold it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from runtime.core.flavours import import_flavour

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

LAYERS_HEADER = "Layers:"
# Warnings after which the builder still returns an engine, one that no input can run:
# they fail the build as errors do. TensorRT-RTX warns "Profile kMAX values are not
# self-consistent" for a profile whose largest tensor exceeds its volume limit.
FATAL_WARNINGS = ("not self-consistent",)
# ILogger.Severity values, the same in TensorRT and TensorRT-RTX.
INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

_BUILD_LOCK = threading.Lock()
_LOGGERS: dict[str, tuple[ModuleType, Any]] = {}


@dataclass
class BuildLog:
    """What one build's TensorRT log said that the build needs afterwards."""

    layers_message: str | None = None  # the DETAILED `Layers:` message (TensorRT-RTX)
    errors: list[str] = field(default_factory=list)  # ERROR lines and FATAL_WARNINGS: any fails the build

    def last_error(self) -> str:
        return self.errors[-1].strip().splitlines()[0] if self.errors else "no error was logged"


def _router_class(trt_module: ModuleType) -> type:
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = trt_module

    class RoutingLogger(trt.ILogger):  # type: ignore[misc]
        """Warnings to Python logging; errors and the layer table to the current BuildLog."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.current: BuildLog | None = None

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            level = int(severity)
            if level == VERBOSE:
                if self.current is not None and msg.startswith(LAYERS_HEADER):
                    self.current.layers_message = msg
                return
            if level <= ERROR or (level == WARNING and any(w in msg for w in FATAL_WARNINGS)):
                # Kept for the build's own error message (parser errors have their own list),
                # and at DEBUG here so that one failure is not printed twice.
                if self.current is not None:
                    self.current.errors.append(msg)
                log.debug("TensorRT error: %s", msg)
            elif level == WARNING:
                log.warning("TensorRT: %s", msg)
            else:
                log.debug("TensorRT: %s", msg)

    return RoutingLogger


def process_logger(flavour: str) -> Any:
    """This flavour's process-wide logger (made on first use; remade if the module changed,
    as when tests swap in a test double)."""
    module = import_flavour(flavour)
    known = _LOGGERS.get(flavour)
    if known is None or known[0] is not module:
        known = (module, _router_class(module)())
        _LOGGERS[flavour] = known
    return known[1]


@contextlib.contextmanager
def capture(flavour: str) -> Iterator[tuple[trt.ILogger, BuildLog]]:
    """The flavour's logger, routed to a fresh BuildLog until the block ends."""
    with _BUILD_LOCK:
        logger = process_logger(flavour)
        record = BuildLog()
        logger.current = record
        try:
            yield logger, record
        finally:
            logger.current = None
