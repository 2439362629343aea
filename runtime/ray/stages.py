"""The Ray Data stages: decode in CPU tasks (or on each actor's GPU), infer in an actor pool.

The shape is Ray Data's batch-inference pattern. Paths are a dataset; a stateless
function decodes and preprocesses each batch in CPU tasks; a callable class holding
one activated Runner runs inference in a pool of actors (one GPU each where the cluster
has GPUs). With `--decode gpu` the CPU stage is skipped and each actor decodes on its
GPU (decoding.py). Errors are data: a file that cannot be decoded carries its reason to
the output instead of failing the job, so no file is ever lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..classify import top_k_records
from ..errors import UserError, require
from ..images.transform import ImageTransform
from ..loader import load
from ..manifest import load_manifest
from .decoding import ActorDecoder, Decoded, decode_batch, decode_in_actors, decode_task_memory, from_cpu_stage
from .options import RAY_HINT, RayOptions
from .paths import column_like, name, text

log = logging.getLogger(__name__)

INFERENCE_FAILED = "inference failed: "  # starts the error of each row of a batch the actor refused
__all__ = ["INFERENCE_FAILED", "Classifier", "classify_dataset", "decode_batch", "decode_task_memory"]
BATCHES_PER_BLOCK = 8  # paths per decode task = 8 batches: enough work to amortise a task's overhead


class Classifier:
    """Actor: one activated Runner, reused for every batch this actor is given.

    Ray gives each actor its own GPU through CUDA_VISIBLE_DEVICES, so the runner's
    device 0 is that GPU. With `decode` "gpu" or "auto" (and `transform`), batches are
    {"path"} and the actor decodes them itself (decoding.ActorDecoder); else they come
    decoded from decode_batch."""

    def __init__(
        self,
        model_file: str,
        backend: str | None,
        topk: int,
        labels: list[str] | None,
        load_options: dict[str, Any] | None = None,
        transform: ImageTransform | None = None,
        decode: str = "cpu",
        batch: int = 32,
    ) -> None:
        self.runner = load(model_file, backend, **(load_options or {})).activate()
        self.topk, self.labels = topk, labels
        self.decoder = None
        if decode != "cpu" and transform is not None:
            self.decoder = ActorDecoder(decode, self.runner.backend, transform, batch)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        cells = list(batch["path"])
        errors = [""] * len(cells)
        found: dict[int, dict[str, Any]] = {}
        for first, images, ok, failed in self._decoded(batch, cells):
            for i, reason in failed.items():
                errors[first + i] = reason
            if not ok:
                continue
            try:
                logits = self.runner.infer(images)
            except UserError as exc:
                # Every row of a refused batch says why. Ray would wrap an exception raised
                # here beyond recognition, so ray_classify fails the job on these rows instead.
                for i in ok:
                    errors[first + i] = f"{INFERENCE_FAILED}{exc}"
            else:
                found.update(
                    {first + i: r for i, r in zip(ok, top_k_records(logits, self.topk, self.labels), strict=True)}
                )
        # Arrow, not numpy, on the way out: a failed row has null classes/labels/probs.
        rows = [found.get(i, {}) for i in range(len(errors))]
        return pa.table(
            {
                "path": column_like(cells),
                "error": pa.array([text(e) if e else None for e in errors], pa.string()),
                "classes": pa.array([r.get("classes") for r in rows], pa.list_(pa.int64())),
                "labels": pa.array([r.get("labels") for r in rows], pa.list_(pa.string())),
                "probs": pa.array([r.get("probs") for r in rows], pa.list_(pa.float64())),
            }
        )

    def _decoded(self, batch: dict[str, np.ndarray], cells: list[Any]) -> Iterable[Decoded]:
        """The batch's (first row, images, ok, errors), decoded by the CPU stage or here."""
        if self.decoder is None:
            return [from_cpu_stage(batch)]
        if self.decoder.refused:  # --decode gpu on an actor that cannot: the job fails on it
            refused: Decoded = (0, None, [], dict.fromkeys(range(len(cells)), INFERENCE_FAILED + self.decoder.refused))
            return [refused]
        return self.decoder.batches([name(c) for c in cells])


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
    transform = transform or ImageTransform(manifest.preprocessing, manifest.input_spec)
    load_options = {
        "cuda_graph": options.cuda_graph,
        "allow_missing_sidecar": options.allow_missing_sidecar,
        "allow_engine_host_code": options.allow_engine_host_code,
    }
    in_actors = decode_in_actors(options.decode, load(model_file, options.backend, **load_options).backend, gpus)
    decoded = paths
    if not in_actors:
        decoded = paths.map_batches(
            decode_batch,
            batch_size=options.batch,
            batch_format="numpy",
            fn_kwargs={"transform": transform},
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
            "load_options": load_options,
            "transform": transform,
            "decode": options.decode if in_actors else "cpu",
            "batch": options.batch,
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
