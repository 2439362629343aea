"""How to run on Ray: the options, the figures a run returns, and `classify --ray`'s flags."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..errors import UserError, require

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
    cuda_graph: bool = False  # TensorRT: replay each input shape from a CUDA graph
    allow_missing_sidecar: bool = False  # TensorRT: run an engine with no .engine.json
    allow_engine_host_code: bool = False  # TensorRT: let the engine's own host code run (--allow-engine-host-code)
    decode: str = "cpu"  # cpu: Pillow in CPU tasks; gpu: nvImageCodec on each actor's GPU; auto: gpu where it can


@dataclass
class RayStats:
    images: int
    classified: int
    skipped: int
    seconds: float  # the dataset run, from the first task to the last row written
    startup_seconds: float  # connecting to (or starting) the cluster; 0 when Ray was already up


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
        allow_engine_host_code=args.allow_engine_host_code,
        decode=args.decode,
    )
