"""Save a build: engine first, then its sidecar, then its layer report.

An old sidecar must never describe a new engine, so the old records are removed before the
new engine is renamed into place. However a rebuild is interrupted, what is left is either
the old trio, a consistent new pair or trio, or an engine without a sidecar (which the runtime
refuses by default): never a new sidecar beside an old engine, nor the reverse.
"""

from __future__ import annotations

from pathlib import Path

from runtime.core.artifacts import layers_path, sidecar_path
from runtime.core.atomic import atomic_path, write_json_atomic
from runtime.core.engine_meta import EngineMeta

from ..layers import LayerReport


def save_build(engine_path: Path, serialized: memoryview, meta: EngineMeta, report: LayerReport) -> None:
    """An OSError (read-only or full disk) propagates naming the file: the command line
    reports it as an operating-system error, and atomic_path has left no partial file."""
    sidecar, layers = sidecar_path(engine_path), layers_path(engine_path)
    sidecar.unlink(missing_ok=True)
    layers.unlink(missing_ok=True)
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(serialized)
    write_json_atomic(sidecar, meta.to_dict())
    write_json_atomic(layers, report.to_dict())
