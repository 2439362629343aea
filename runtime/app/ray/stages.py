"""The Ray Data stages: decode in CPU tasks (or on each actor's GPU), infer in an actor pool.

The shape is Ray Data's batch-inference pattern. Paths are a dataset; a stateless
function decodes and preprocesses each batch in CPU tasks; a callable class holding
one activated Runner runs inference in a pool of actors (one GPU each where the cluster
has GPUs). With `--decode gpu` the CPU stage is skipped and each actor decodes on its
GPU (decoding.py). Errors are data: a file that cannot be decoded carries its reason to
the output instead of failing the job, so no file is ever lost.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import UserError, require
from ...core.loader import TensorRTOptions, load
from ...core.manifest import load_manifest
from ..classify import top_k_records
from ..images.transform import ImageTransform
from .decoding import ActorBatch, ActorDecoder, decode_batch, decode_in_actors, decode_task_memory, from_cpu_stage
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
        tensorrt: TensorRTOptions | None = None,
        transform: ImageTransform | None = None,
        decode: str = "cpu",
        batch: int = 32,
        cpu_graph: bool = True,
    ) -> None:
        self.runner = load(model_file, backend, tensorrt, cpu_graph=cpu_graph).activate()
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

    def _decoded(self, batch: dict[str, np.ndarray], cells: list[Any]) -> Iterable[ActorBatch]:
        """The batch's (first row, images, ok, errors), decoded by the CPU stage or here."""
        if self.decoder is None:
            return [from_cpu_stage(batch)]
        if self.decoder.refused:  # --decode gpu on an actor that cannot: the job fails on it
            refused: ActorBatch = (0, None, [], dict.fromkeys(range(len(cells)), INFERENCE_FAILED + self.decoder.refused))
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
    cluster = ray.cluster_resources()
    gpus, workers = _actor_resources(cluster, options)
    transform = transform or ImageTransform(manifest.preprocessing, manifest.input_spec)
    in_actors = decode_in_actors(options.decode, load(model_file, options.backend, options.tensorrt, cpu_graph=options.cpu_graph).backend, gpus)
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
    restarts = actor_restarts(cluster, decoded.map_batches)
    with warnings.catch_warnings():
        # Ray 2.60 takes max_restarts only among its deprecated extra remote arguments.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return decoded.map_batches(
            Classifier,
            batch_size=actor_batch_size(options.batch, in_actors),
            batch_format="numpy",
            fn_constructor_kwargs={
                "model_file": str(Path(model_file).resolve()),
                "backend": options.backend,
                "topk": options.topk,
                "labels": manifest.labels,
                "tensorrt": options.tensorrt,
                "cpu_graph": options.cpu_graph,
                "transform": transform,
                "decode": options.decode if in_actors else "cpu",
                "batch": options.batch,
            },
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            num_gpus=gpus,
            **restarts,
        )


def actor_restarts(cluster: dict[str, float], map_batches: Any = None) -> dict[str, int]:
    """Ray Data restarts a crashed actor forever by default, and then logs an error line
    (core_worker.cc) on every run because the actor's arguments sit in the object store.
    On one node a restart meets the same crash (memory, a bad engine): fail instead, and
    without the line. A cluster of several nodes keeps Ray's default, as does a Ray whose
    `map_batches` no longer takes extra remote arguments."""
    if map_batches is not None:
        kinds = [p.kind for p in inspect.signature(map_batches).parameters.values()]
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            return {}
    nodes = [k for k in cluster if k.startswith("node:") and k != "node:__internal_head__"]
    return {"max_restarts": 0} if len(nodes) <= 1 else {}


def actor_batch_size(batch: int, in_actors: bool) -> int:
    """Rows per call of an inference actor. An actor that decodes on its GPU gets
    BATCHES_PER_BLOCK batches per call, so its DevicePipeline decodes batch i + 1 while the
    engine runs batch i (one batch per call would leave nothing to overlap with)."""
    return batch * BATCHES_PER_BLOCK if in_actors else batch


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
