"""The host pipeline alone (decode, resize, crop, and normalise or not), float32 NCHW
against uint8 NHWC, at each worker count, interleaved round by round.

    python benchmarks/host_pipeline.py build/convmixer_768_32/model.onnx --images DIR [--workers 1,4] [--rounds 3]

Only the model's preprocessing (model.json) matters here; no inference runs. Each round
passes every image through a started pipeline once per input kind, alternating, so
machine noise hits both alike; the table gives the median rate and the uint8/float ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.app.cli.options import MAX_BATCH, guarded, whole, whole_list  # noqa: E402
from runtime.app.images.inputs import collect_images  # noqa: E402
from runtime.app.images.pipeline import HostPipeline  # noqa: E402
from runtime.app.images.transform import ImageTransform  # noqa: E402
from runtime.core.errors import UserError  # noqa: E402
from runtime.core.manifest import InputSpec, load_manifest  # noqa: E402


def one_pass(pipeline: HostPipeline, paths: list[Path]) -> float:
    start = time.perf_counter()
    n = sum(len(b.paths) for b in pipeline.batches(paths))
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_file", type=Path, help="a model file with model.json beside it")
    parser.add_argument("--images", nargs="+", required=True, help="image files or folders to decode")
    parser.add_argument(
        "--workers", type=whole_list("--workers", 0, 256), default=[1], help="comma-separated worker counts (default 1)"
    )
    parser.add_argument("--batch", type=whole("--batch", 1, MAX_BATCH), default=32, help="images per batch (default 32)")
    parser.add_argument(
        "--rounds", type=whole("--rounds", 1, 1000), default=3, help="passes over the images (default 3)"
    )
    return guarded(lambda: run(parser.parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    workers_list: list[int] = args.workers  # 0: no worker processes
    cfg = load_manifest(args.model_file).preprocessing
    paths = collect_images(args.images).paths
    if not paths:
        raise UserError("--images: no readable image files found")
    print(f"{len(paths)} images, preprocessing {cfg.input_size} px {cfg.interpolation}, batch {args.batch}")
    head = f"{'workers':>7} {'float32 img/s':>14} {'uint8 img/s':>12} {'float/worker':>13} {'uint8/worker':>13} {'uint8/float':>12}"
    print(head)
    print("-" * len(head))
    for workers in workers_list:
        rates: dict[str, list[float]] = {"float32": [], "uint8": []}
        pipes = {d: HostPipeline(ImageTransform(cfg, InputSpec(d)), args.batch, workers).start() for d in rates}
        try:
            for pipe in pipes.values():
                one_pass(pipe, paths[: 2 * args.batch])  # warm-up: worker start, file cache
            for _ in range(args.rounds):
                for d, pipe in pipes.items():
                    rates[d].append(one_pass(pipe, paths))
        finally:
            for pipe in pipes.values():
                pipe.close()
        f, u = float(np.median(rates["float32"])), float(np.median(rates["uint8"]))
        per = max(workers, 1)
        print(f"{workers:>7} {f:>14.1f} {u:>12.1f} {f / per:>13.1f} {u / per:>13.1f} {u / f:>11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
