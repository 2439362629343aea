"""Where images are decoded on Ray (`--decode cpu|gpu|auto`).

- cpu: a stateless function (`decode_batch`) decodes each batch with Pillow in CPU tasks
  beside the inference actors, as local classify's host pipeline does;
- gpu: that stage is skipped; each inference actor reads the file names and decodes and
  resizes on its own GPU (`ActorDecoder`: one runtime.app.images.gpu DevicePipeline per
  actor, writing the batch in device memory that the TensorRT runner reads in place).
  Files nvImageCodec cannot decode go through Pillow, as in DevicePipeline;
- auto: gpu where the actors have GPUs, the model is a TensorRT engine and the driver has
  the gpu-images extra; else cpu. An actor without the extra (or a working GPU) then
  decodes with Pillow itself, and says so.

Errors are data either way: a file that cannot be decoded carries its reason to the output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ...core.manifest import Manifest
from ...core.preprocess import MAX_PIXELS
from ..images.gpu import decide, missing
from ..images.transform import ImageTransform, decode_into
from .paths import name

log = logging.getLogger(__name__)


def decode_batch(batch: dict[str, np.ndarray], transform: ImageTransform) -> dict[str, np.ndarray]:
    """CPU task: {"path"} -> {"path", "error", "image"}; a bad file gets its reason and a zero image.

    The decoding is local classify's own (runtime.app.images.pipeline.ImageTransform), so both see
    identical samples. "path" is passed on as it came (string or binary: see paths.py)."""
    paths = [name(p) for p in batch["path"]]
    images = transform.empty_batch(len(paths))
    errors = [decode_into(transform, path, images[i]) or "" for i, path in enumerate(paths)]
    return {"path": np.asarray(batch["path"]), "error": np.asarray(errors, dtype=object), "image": images}


def decode_task_memory(manifest: Manifest, batch: int) -> int:
    """Bytes one decode task may hold: the batch it builds and the one it hands on, plus
    the largest image Pillow may decode (RGB at the pixel limit).

    Declaring it lets Ray place decode tasks by memory as well as by CPU. It also keeps
    Ray from fusing decoding into the inference actors (Ray fuses a task stage into the
    next actor stage only when their resource requests are equal), so decoding runs in
    CPU tasks beside inference, not serially before it in the same process."""
    size = manifest.preprocessing.input_size
    row = int(np.prod(manifest.input_spec.shape(1, size, size))) * (1 if manifest.input_spec.is_uint8 else 4)
    return 2 * batch * row + 3 * MAX_PIXELS


def check_on_driver(mode: str, backend: str) -> None:
    """`--decode gpu` that cannot run: one line before Ray starts (a CPU backend, or the
    gpu-images extra missing here). The driver needs no GPU of its own."""
    if mode == "gpu":
        decide(mode, backend, device=False)  # the one rule: refuses in one line when it cannot run


def decode_in_actors(mode: str, backend: str, gpus_per_actor: float) -> bool:
    """Whether the actors decode on their GPUs (else CPU tasks do); logs the choice.
    `--decode gpu` on a cluster whose actors get no GPU is a UserError."""
    no_gpu = None if gpus_per_actor else "the Ray actors get no GPU: the cluster has none, or --gpus-per-worker is 0"
    used, why = decide(mode, backend, device=False, no_gpu=no_gpu)
    on_gpu = used == "gpu"
    log.info(
        "decoding %s (--decode %s)%s",
        "on each Ray actor's GPU with nvImageCodec" if on_gpu else "in Ray CPU tasks with Pillow",
        mode,
        f"; the GPU path cannot run here: {why}" if mode == "auto" and why else "",
    )
    return on_gpu


ActorBatch = tuple[int, Any, list[int], dict[int, str]]  # first row, images of the ok rows, ok, errors


class ActorDecoder:
    """An inference actor's own decoding: one DevicePipeline on the actor's GPU (device 0:
    Ray sets CUDA_VISIBLE_DEVICES), or Pillow here when `--decode auto` finds no usable GPU
    or extra on this actor. `refused` says why `--decode gpu` cannot run on this actor."""

    def __init__(self, mode: str, backend: str, transform: ImageTransform, batch: int) -> None:
        self.transform = transform
        self.pipeline: Any = None
        self.refused: str | None = None
        why = missing(backend)
        if why is None:
            from ..images.gpu.pipeline import DevicePipeline

            self.pipeline = DevicePipeline(transform, batch, device_id=0).start()
            log.info("Ray actor: decoding on the GPU with nvImageCodec (--decode %s)", mode)
        elif mode == "gpu":
            self.refused = f"--decode gpu on a Ray actor: {why}"
        else:
            log.warning("Ray actor: decoding with Pillow on this actor (--decode auto: %s)", why)

    def batches(self, paths: list[str]) -> Iterator[ActorBatch]:
        """(first row, images, ok, errors) for `paths`, in order, one batch at a time. GPU
        images live in the pipeline's device ring until the next batch is asked for."""
        if self.pipeline is None:
            decoded = decode_batch({"path": np.asarray(paths, dtype=object)}, self.transform)
            yield from_cpu_stage(decoded)
            return
        first = 0
        for b in self.pipeline.batches(paths):
            yield first, b.images, b.ok, b.errors
            first += len(b.paths)


def from_cpu_stage(batch: dict[str, np.ndarray]) -> ActorBatch:
    """decode_batch's output as (first row, images of the ok rows, ok, errors)."""
    errors = {i: str(e) for i, e in enumerate(batch["error"]) if e}
    ok = [i for i in range(len(batch["error"])) if i not in errors]
    return 0, np.ascontiguousarray(batch["image"][ok]) if ok else None, ok, errors
