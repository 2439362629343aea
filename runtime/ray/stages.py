"""The Ray Data stages: decode in CPU tasks, infer in an actor pool.

The shape is Ray Data's batch-inference pattern. Paths are a dataset; a stateless
function decodes and preprocesses each batch in CPU tasks; a callable class holding
one activated Runner runs inference in a pool of actors (one GPU each where the cluster
has GPUs). Errors are data: a file that cannot be decoded carries its reason to the
output instead of failing the job, so no file is ever lost.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..classify import top_k_records
from ..errors import UserError, require
from ..images.preprocess import MAX_PIXELS
from ..images.transform import ImageTransform, decode_into
from ..loader import load
from ..manifest import Manifest, load_manifest
from .options import RAY_HINT, RayOptions

log = logging.getLogger(__name__)

INFERENCE_FAILED = "inference failed: "  # starts the error of each row of a batch the runner refused
BATCHES_PER_BLOCK = 8  # paths per decode task = 8 batches: enough work to amortise a task's overhead


def decode_batch(batch: dict[str, np.ndarray], transform: ImageTransform) -> dict[str, np.ndarray]:
    """CPU task: {"path"} -> {"path", "error", "image"}; a bad file gets its reason and a zero image.

    The decoding is local classify's own (runtime.images.pipeline.ImageTransform), so both see
    identical samples."""
    paths = [str(p) for p in batch["path"]]
    images = transform.empty_batch(len(paths))
    errors = [decode_into(transform, path, images[i]) or "" for i, path in enumerate(paths)]
    return {"path": np.asarray(paths, dtype=object), "error": np.asarray(errors, dtype=object), "image": images}


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


class Classifier:
    """Actor: one activated Runner, reused for every batch this actor is given.

    Ray gives each actor its own GPU through CUDA_VISIBLE_DEVICES, so the runner's
    device 0 is that GPU."""

    def __init__(
        self,
        model_file: str,
        backend: str | None,
        topk: int,
        labels: list[str] | None,
        load_options: dict[str, Any] | None = None,
    ) -> None:
        self.runner = load(model_file, backend, **(load_options or {})).activate()
        self.topk, self.labels = topk, labels

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        errors = [str(e) for e in batch["error"]]
        ok = [i for i, e in enumerate(errors) if not e]
        found: dict[int, dict[str, Any]] = {}
        if ok:
            try:
                logits = self.runner.infer(np.ascontiguousarray(batch["image"][ok]))
            except UserError as exc:
                # Every row of a refused batch says why. Ray would wrap an exception raised
                # here beyond recognition, so ray_classify fails the job on these rows instead.
                errors = [e or f"{INFERENCE_FAILED}{exc}" for e in errors]
            else:
                found = dict(zip(ok, top_k_records(logits, self.topk, self.labels), strict=True))
        # Arrow, not numpy, on the way out: a failed row has null classes/labels/probs.
        rows = [found.get(i, {}) for i in range(len(errors))]
        return pa.table(
            {
                "path": pa.array([str(p) for p in batch["path"]], pa.string()),
                "error": pa.array([e or None for e in errors], pa.string()),
                "classes": pa.array([r.get("classes") for r in rows], pa.list_(pa.int64())),
                "labels": pa.array([r.get("labels") for r in rows], pa.list_(pa.string())),
                "probs": pa.array([r.get("probs") for r in rows], pa.list_(pa.float64())),
            }
        )


def classify_dataset(
    paths: Any,
    model_file: str | Path,
    options: RayOptions = RayOptions(),
    manifest_file: str | Path | None = None,
    transform: ImageTransform | None = None,
) -> Any:
    """Ray Dataset of {"path"} rows -> Ray Dataset of result rows (path, error, classes, labels, probs).

    For use inside your own Ray job: read, filter or shard the paths as you like, then
    write the result with any of Ray Data's writers. Ray must already be initialised.
    """
    ray = require("ray", RAY_HINT)
    require("ray.data", RAY_HINT)
    manifest = load_manifest(manifest_file or model_file)
    gpus, workers = _actor_resources(ray.cluster_resources(), options)
    decoded = paths.map_batches(
        decode_batch,
        batch_size=options.batch,
        batch_format="numpy",
        fn_kwargs={"transform": transform or ImageTransform(manifest.preprocessing, manifest.input_spec)},
        num_cpus=1,
        memory=decode_task_memory(manifest, options.batch),
    )
    return decoded.map_batches(
        Classifier,
        batch_size=options.batch,
        batch_format="numpy",
        fn_constructor_kwargs={
            "model_file": str(Path(model_file).resolve()),
            "backend": options.backend,
            "topk": options.topk,
            "labels": manifest.labels,
            "load_options": {"cuda_graph": options.cuda_graph, "allow_missing_sidecar": options.allow_missing_sidecar},
        },
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        num_gpus=gpus,
    )


def _actor_resources(cluster: dict[str, float], options: RayOptions) -> tuple[float, int]:
    """(GPUs per actor, number of actors) from the options, filled in from the cluster."""
    have_gpus = float(cluster.get("GPU", 0))
    gpus = options.gpus_per_worker if options.gpus_per_worker is not None else (1.0 if have_gpus else 0.0)
    if gpus < 0:
        raise UserError(f"--gpus-per-worker {gpus:g}: must be 0 or more")
    workers = options.workers
    if workers is None:
        workers = max(1, int(have_gpus // gpus)) if gpus else 1
    if workers < 1:
        raise UserError(f"--workers {workers}: Ray needs at least one inference actor")
    cpus = float(cluster.get("CPU", 0))
    if workers >= cpus:
        # Each actor holds a CPU; with none left, decoding tasks never run and the job waits forever.
        raise UserError(
            f"--workers {workers}: the Ray cluster has {cpus:g} CPUs and each inference actor takes one; "
            "leave at least one for decoding"
        )
    if gpus and workers * gpus > have_gpus:
        log.warning(
            "%d actors x %g GPUs is more than the cluster's %g GPUs; the job waits for more", workers, gpus, have_gpus
        )
    return gpus, workers
