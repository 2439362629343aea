"""Which pipeline feeds the runner (`--decode cpu|gpu|auto`): Pillow in worker processes
(HostPipeline), or nvImageCodec and the exact resize kernel on the GPU (DevicePipeline),
which writes TensorRT's device input. Both are an ImagePipeline (runtime.app.images.transform)."""

from __future__ import annotations

from .gpu import choose
from .pipeline import HostPipeline, check_pipeline_memory
from .transform import ImagePipeline, ImageTransform


def image_pipeline(
    decode: str, backend: str, transform: ImageTransform, batch: int, workers: int, device: int = 0
) -> ImagePipeline:
    """A HostPipeline or DevicePipeline for `--decode` (not started: use it as a context manager);
    `device`: the CUDA device the GPU pipeline decodes on, the runner's.

    A host pipeline whose batch slots cannot be allocated here is refused before it starts."""
    if choose(decode, backend, device) == "gpu":
        from .gpu.pipeline import DevicePipeline

        return DevicePipeline(transform, batch, device_id=device)
    pipeline = HostPipeline(transform, batch, workers)
    check_pipeline_memory(pipeline)
    return pipeline
