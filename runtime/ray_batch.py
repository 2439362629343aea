"""Batch classification on Ray Data: decode in CPU tasks, infer in an actor pool.

The shape is Ray Data's batch-inference pattern. Paths are a dataset; a stateless
function decodes and preprocesses each batch in CPU tasks; a callable class holding
one activated Runner runs inference in a pool of actors (one GPU each where the cluster
has GPUs). Errors are data: a file that cannot be decoded carries its reason to the
output instead of failing the job, so no file is ever lost.

Every image file must be readable at the same path on every node (a shared or
replicated file system), and so must the model file and its model.json.

Ray is an optional dependency (the `ray` extra): this module is imported only by
`--ray` and by `runtime.ray_classify`, never by `import runtime`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .classify import OUTPUT_FORMATS as LOCAL_OUTPUT_FORMATS
from .classify import Writer, top_k_records
from .classify import output_format as local_output_format
from .errors import UserError, require
from .images.inputs import ImageInputs
from .images.pipeline import ImageTransform, decode_into
from .images.preprocess import MAX_PIXELS
from .io import atomic_path
from .manifest import Manifest, load_manifest

log = logging.getLogger(__name__)

RAY_HINT = "--ray needs the ray extra: pip install -e '.[ray]'"
OUTPUT_FORMATS = {**LOCAL_OUTPUT_FORMATS, ".parquet": "parquet"}
CONNECT_TIMEOUT_S = 10.0
INFERENCE_FAILED = "inference failed: "  # starts the error of each row of a batch the runner refused
BATCHES_PER_BLOCK = 8  # paths per decode task = 8 batches: enough work to amortise a task's overhead


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray. None means: decide from the cluster's resources."""

    address: str | None = None  # HOST:PORT, ray://HOST:PORT or auto; None starts a local cluster
    workers: int | None = None  # inference actors (default: one per GPU/gpus_per_worker, or 1 without GPUs)
    gpus_per_worker: float | None = None  # default: 1 where the cluster has GPUs, else 0
    batch: int = 32
    topk: int = 5
    backend: str | None = None  # runtime.load's backend; None picks by file extension
    cuda_graph: bool = False  # TensorRT: replay each input shape from a CUDA graph
    allow_missing_sidecar: bool = False  # TensorRT: run an engine with no .engine.json


@dataclass
class RayStats:
    images: int
    classified: int
    skipped: int
    seconds: float  # the dataset run, from the first task to the last row written
    startup_seconds: float  # connecting to (or starting) the cluster; 0 when Ray was already up


# ---- The Ray Data stages ----


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
        from . import load

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


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, with one line, when a cluster address does not answer: ray.init itself
    retries for a long time before giving up."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"--ray-address {address}: cannot reach {host}:{port} within {timeout:g} s ({reason}); "
            "is `ray start --head` running there?"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[float]:
    """Join the cluster at `address`, or start a local one; yields the start-up seconds.

    A Ray session that is already up (the caller's own job) is used as it is and left
    running; one started here is shut down at the end."""
    ray = require("ray", RAY_HINT)
    if ray.is_initialized():
        yield 0.0
        return
    if address:
        check_reachable(address)
    start = time.perf_counter()
    try:
        with _held_stderr() if address else contextlib.nullcontext():
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot start or join a Ray cluster at {address or 'a new local cluster'}: {first}") from None
    startup = time.perf_counter() - start
    log.info("Ray is up in %.1f s: %s", startup, ray.cluster_resources())
    try:
        yield startup
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _held_stderr() -> Iterator[None]:
    """Hold what is written to file descriptor 2 and pass it on only if the block succeeds.

    Ray's C++ core logs a line per retry there while it tries to join an address that
    answers but is not a Ray cluster; a failed join should end in one line, ours."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            if ok:
                sys.stderr.write(text)
            elif text:
                log.debug("Ray's output while joining:\n%s", text)


def output_format(output: Path | None) -> str:
    """Local classify's formats, and Parquet."""
    return local_output_format(output, OUTPUT_FORMATS)


def ray_classify(
    model_file: str | Path,
    inputs: ImageInputs | list[Path] | list[str],
    output: Path | None = None,
    options: RayOptions = RayOptions(),
    transform: ImageTransform | None = None,
) -> RayStats:
    """Classify `inputs` on Ray Data and write one record per input to `output` (or stdout).

    Records are local classify's: {"path", "classes", "labels", "probs"} or {"path", "error"};
    inputs that runtime.images.inputs.collect_images already skipped are written with their reason.
    Output is .jsonl, .csv or .parquet, written on the driver as results stream in and
    renamed into place when the run completes. Rows come in completion order, not input order.
    `transform` defaults to model.json's preprocessing and input spec.
    """
    if not isinstance(inputs, ImageInputs):
        inputs = ImageInputs(paths=[Path(p) for p in inputs])
    if options.batch < 1 or options.topk < 1:
        raise UserError("--batch and --topk must be at least 1")
    fmt = output_format(output)
    if not inputs.count:
        raise UserError("no images to classify")
    load_manifest(model_file)  # a missing model.json fails here, before Ray starts
    ray = require("ray", RAY_HINT)
    pa = require("pyarrow", RAY_HINT)
    names = [str(p) for p in inputs.paths]
    classified = skipped = 0
    with _sink(output, fmt, options.topk) as write, ray_session(options.address) as startup:
        start = time.perf_counter()
        if inputs.skipped:
            reasons = [s.reason for s in inputs.skipped]
            write(
                pa.table({"path": [s.path for s in inputs.skipped], "error": reasons})
                .append_column("classes", pa.nulls(len(reasons), pa.list_(pa.int64())))
                .append_column("labels", pa.nulls(len(reasons), pa.list_(pa.string())))
                .append_column("probs", pa.nulls(len(reasons), pa.list_(pa.float64())))
            )
            for s in inputs.skipped:
                log.warning("skipped %s: %s", s.path, s.reason)
            skipped += len(reasons)
        if names:
            blocks = max(1, math.ceil(len(names) / (options.batch * BATCHES_PER_BLOCK)))
            dataset = ray.data.from_arrow(pa.table({"path": pa.array(names, pa.string())}), override_num_blocks=blocks)
            results = classify_dataset(dataset, model_file, options, transform=transform)
            for table in results.iter_batches(batch_format="pyarrow", batch_size=None):
                for row in table.to_pylist():
                    if row["error"] is not None and row["error"].startswith(INFERENCE_FAILED):
                        # The runner refused a batch: the job fails, as local classify does.
                        raise UserError(row["error"].removeprefix(INFERENCE_FAILED))
                    if row["error"] is not None:
                        skipped += 1
                        log.warning("skipped %s: %s", row["path"], row["error"])
                    else:
                        classified += 1
                write(table)
        seconds = time.perf_counter() - start
    if classified + skipped != inputs.count:  # never expected; a lost file must not pass silently
        raise UserError(f"Ray returned {classified + skipped} results for {inputs.count} inputs")
    return RayStats(inputs.count, classified, skipped, seconds, startup)


def _record(row: dict[str, Any]) -> dict[str, Any]:
    if row["error"] is not None:
        return {"path": row["path"], "error": row["error"]}
    return {"path": row["path"], "classes": row["classes"], "labels": row["labels"], "probs": row["probs"]}


@contextlib.contextmanager
def _sink(output: Path | None, fmt: str, topk: int) -> Iterator[Any]:
    """A function that writes one Arrow table of results. The file is opened first, so a
    path that cannot be written fails before Ray starts, and it replaces `output` only once
    the run completes."""
    with contextlib.ExitStack() as stack:
        # OS errors propagate (atomic_path names `output` in them), as in local classify.
        fh: IO[str] = sys.stdout
        tmp = stack.enter_context(atomic_path(output)) if output is not None else None
        if tmp is not None and fmt != "parquet":
            fh = stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
        if fmt == "parquet":
            pq = require("pyarrow.parquet", RAY_HINT)
            parquet: list[Any] = []  # the writer, made with the first table's schema
            stack.callback(lambda: parquet and parquet[0].close())

            def write(table: Any) -> None:
                if not parquet:
                    parquet.append(pq.ParquetWriter(str(tmp), table.schema))
                parquet[0].write_table(table)

            yield write
            return
        writer = Writer(fh, fmt, topk)

        def write_rows(table: Any) -> None:
            for row in table.to_pylist():
                writer.write(_record(row))

        yield write_rows


def options_from_args(args: argparse.Namespace) -> RayOptions:
    """`classify --ray`'s flags as RayOptions."""
    if not args.ray:
        raise UserError("--ray-address and --gpus-per-worker need --ray")
    require("ray", RAY_HINT)
    return RayOptions(
        address=args.ray_address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        batch=args.batch,
        topk=args.topk,
        backend=args.backend,
        cuda_graph=args.cuda_graph,
        allow_missing_sidecar=args.no_sidecar,
    )
