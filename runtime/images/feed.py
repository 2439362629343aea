"""Which pipeline feeds the runner (`--decode cpu|gpu|auto`): Pillow in worker processes
(HostPipeline), or nvImageCodec and the exact resize kernel on the GPU (DevicePipeline),
which writes TensorRT's device input. Both hand out the same `Batch`es."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .gpu import choose
from .pipeline import HostPipeline
from .transform import ImageTransform


def backend_of(model_file: Path, backend: str | None) -> str:
    """The backend runtime.load picks for `model_file` when none is named."""
    return backend or ("tensorrt" if Path(model_file).suffix == ".engine" else "onnxruntime")


def image_pipeline(
    decode: str, backend: str, transform: ImageTransform, batch: int, workers: int, device: int = 0
) -> Any:
    """A HostPipeline or DevicePipeline for `--decode` (not started: use it as a context manager);
    `device`: the CUDA device the GPU pipeline decodes on, the runner's.

    A host pipeline whose batch slots cannot be allocated here is refused before it starts."""
    if choose(decode, backend, device) == "gpu":
        from .gpu.pipeline import DevicePipeline

        return DevicePipeline(transform, batch, device_id=device)
    from ..memory_budget import check_pipeline_memory

    pipeline = HostPipeline(transform, batch, workers)
    check_pipeline_memory(pipeline)
    return pipeline
