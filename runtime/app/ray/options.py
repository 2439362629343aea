"""How to run on Ray: the options, the figures a run returns, and `classify --ray`'s flags."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from ...core.errors import UserError, require
from ...core.loader import TensorRTOptions

RAY_HINT = "--ray needs the ray extra: pip install -e '.[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray. None means: decide from the cluster's resources."""

    address: str | None = None  # HOST:PORT, ray://HOST:PORT or auto; None starts a local cluster
    workers: int | None = None  # inference actors (default: one per GPU/gpus_per_worker, or 1 without GPUs)
    gpus_per_worker: float | None = None  # default: 1 where the cluster has GPUs, else 0
    batch: int = 32
    topk: int = 5
    backend: str | None = None  # runtime.load's backend; None picks by file extension
    tensorrt: TensorRTOptions = TensorRTOptions()  # the TensorRT runner's, passed to each actor unchanged
    cpu_graph: bool = True  # ONNX Runtime on the CPU: model.int8.onnx runs as its CPU INT8 graph (--no-cpu-graph)
    decode: str = "cpu"  # cpu: Pillow in CPU tasks; gpu: nvImageCodec on each actor's GPU; auto: gpu where it can


@dataclass
class RayStats:
    images: int
    classified: int
    skipped: int
    seconds: float  # the dataset run, from the first task to the last row written
    startup_seconds: float  # connecting to (or starting) the cluster; 0 when Ray was already up


def options_from_args(args: argparse.Namespace, tensorrt: TensorRTOptions) -> RayOptions:
    """`classify --ray`'s flags as RayOptions."""
    if not args.ray:
        raise UserError("--ray-address and --gpus-per-worker need --ray")
    require("ray", RAY_HINT)
    cpus = os.cpu_count() or 1
    if args.ray_address is None and args.workers is not None and args.workers >= cpus:
        # The local cluster gets this machine's CPUs; stages._actor_resources has the same
        # rule for a cluster, known only once joined. Said here before Ray spends seconds starting.
        raise UserError(
            f"--workers {args.workers}: a local Ray cluster has this machine's {cpus} CPUs and each inference "
            f"actor takes one; leave at least one for decoding (--workers {cpus - 1} at most here)"
            if cpus > 1
            else f"--workers {args.workers}: a local Ray cluster has this machine's 1 CPU, and it needs one for "
            "an inference actor and one for decoding; run without --ray"
        )
    return RayOptions(
        address=args.ray_address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        batch=args.batch,
        topk=args.topk,
        backend=args.backend,
        cpu_graph=not args.no_cpu_graph,
        tensorrt=tensorrt,
        decode=args.decode,
    )
