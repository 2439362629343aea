"""Torch-free ConvMixer runtime: load a model file, infer batches, check parity.

Imports numpy and Pillow only; each backend (runtime.backends) imports its own library
(tensorrt or tensorrt_rtx, cuda-python, onnxruntime) when it is activated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import UserError
from .loader import BACKENDS, load
from .parity import TOLERANCES, ParityResult, Tolerance, compare
from .runner import Runner

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
    """Classify `paths` on Ray Data (the ray extra); options are runtime.ray.RayOptions' fields.

    Imports ray only when called, so `import runtime` stays light."""
    from .ray import RayOptions
    from .ray import ray_classify as run

    return run(model_file, paths, output, RayOptions(**options))
