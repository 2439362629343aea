"""Torch-free ConvMixer runtime: load a model file, infer batches, check parity.

Imports numpy and Pillow only; each backend (runtime.core.backends) imports its own library
(tensorrt or tensorrt_rtx, cuda-python, onnxruntime) when it is activated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .core.errors import UserError
from .core.loader import BACKENDS, load
from .core.parity import TOLERANCES, ParityResult, Tolerance, compare
from .core.runner import Runner

__all__ = [
    "BACKENDS",
    "ParityResult",
    "Runner",
    "TOLERANCES",
    "Tolerance",
    "UserError",
    "compare",
    "load",
    "ray_classify",
]


def ray_classify(
    model_file: str | Path, paths: list[Path] | list[str], output: Path | None = None, **options: Any
) -> Any:
    """Classify `paths` on Ray Data (the ray extra); options are runtime.app.ray.RayOptions' fields.

    Imports ray only when called, so `import runtime` stays light."""
    from .app.ray import RayOptions
    from .app.ray import ray_classify as run

    return run(model_file, paths, output, RayOptions(**options))
