"""python -m runtime {parity,classify,evaluate,bench} MODEL_FILE ...

MODEL_FILE is an .engine (TensorRT) or an .onnx (ONNX Runtime) file in a folder that
also holds the model.json written by `python -m export onnx`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli_support import batch_sizes, run_parsed

if TYPE_CHECKING:
    from .images.pipeline import ImageTransform
    from .manifest import Manifest


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file", type=Path, help=".engine or .onnx file")
    p.add_argument("--backend", choices=["tensorrt", "onnxruntime"], help="default: by file extension")
    p.add_argument("--cuda-graph", action="store_true", help="TensorRT: replay each input shape from a CUDA graph")
    p.add_argument("--no-sidecar", action="store_true", help="TensorRT: run an engine with no .engine.json (trtexec)")


def _load_options(args: argparse.Namespace) -> dict[str, bool]:
    """runtime.load's keyword options from the flags _backend_args adds."""
    return {"cuda_graph": args.cuda_graph, "allow_missing_sidecar": args.no_sidecar}


def cmd_parity(args: argparse.Namespace) -> int:
    from .parity_check import run_parity

    result = run_parity(args.model_file, args.golden, args.backend, args.precision, _load_options(args))
    print(result.to_json() if args.json else result.summary())
    return 0 if result else 1


def _transform(args: argparse.Namespace, manifest: Manifest) -> ImageTransform:
    """How this command turns images into the model's input: model.json's preprocessing
    and input spec, with the command line's decode options."""
    from .images.pipeline import ImageTransform

    cfg = manifest.preprocessing
    if args.no_exif_transpose:
        cfg = dataclasses.replace(cfg, exif_transpose=False)
    return ImageTransform(cfg, manifest.input_spec, reduced_decode=args.reduced_decode)


def _warn_random(manifest: Manifest, what: str) -> None:
    if manifest.random_init:
        logging.getLogger("runtime").warning("%s has random weights; %s are meaningless", manifest.model, what)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import load
    from .evaluate import evaluate, labelled_batches
    from .images.pipeline import HostPipeline, default_workers
    from .manifest import load_manifest

    manifest = load_manifest(args.model_file)
    _warn_random(manifest, "its accuracy figures")
    transform = _transform(args, manifest)
    workers = default_workers() if args.workers is None else args.workers
    # Decode workers start before the backend initialises CUDA or ONNX Runtime.
    with HostPipeline(transform, args.batch, 0 if args.data == "digits" else workers) as pipeline:
        with load(args.model_file, args.backend, **_load_options(args)) as runner:
            batches = labelled_batches(args.data, transform, manifest.labels, args.batch, pipeline)
            acc = evaluate(runner, batches)
    if args.json:
        print(json.dumps({"model_file": str(args.model_file), **acc.to_dict()}))
    else:
        print(
            f"{args.model_file}: top-1 {acc.top1:.2%}  top-5 {acc.top5:.2%}  on {acc.images} images"
            + (f" ({acc.skipped} unreadable skipped)" if acc.skipped else "")
        )
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from . import load
    from .classify import classify, output_format
    from .errors import UserError
    from .images.inputs import collect_images
    from .images.pipeline import HostPipeline, default_workers
    from .manifest import load_manifest

    on_ray = args.ray or args.ray_address is not None or args.gpus_per_worker is not None
    if on_ray:
        from .ray_batch import options_from_args
        from .ray_batch import output_format as ray_output_format

        options = options_from_args(args)  # flags and the ray extra are checked before any work
        ray_output_format(args.output)
    else:
        output_format(args.output)  # a bad file name fails before any work
    manifest = load_manifest(args.model_file)
    _warn_random(manifest, "these predictions")
    inputs = collect_images(args.images)
    if not inputs.count:
        raise UserError("no images found (any format Pillow reads) in the given files, folders or globs")
    transform = _transform(args, manifest)
    stats: Any  # ClassifyStats or RayStats: images, classified, skipped, seconds
    if on_ray:
        from .ray_batch import ray_classify

        stats = ray_classify(args.model_file, inputs, args.output, options, transform)
        where = f" on Ray after {stats.startup_seconds:.1f} s of Ray start-up,"
    else:
        workers = default_workers() if args.workers is None else args.workers
        workers = min(workers, len(inputs.paths))
        # Decode workers start before the backend initialises CUDA or ONNX Runtime.
        with HostPipeline(transform, args.batch, workers) as pipeline:
            with load(args.model_file, args.backend, **_load_options(args)) as runner:
                # Batches are assembled straight into the runner's buffer: page-locked on TensorRT,
                # so the copy to the GPU needs no staging.
                buffer = runner.host_buffer((args.batch, *transform.sample_shape))
                stats = classify(runner, pipeline, inputs, manifest.labels, args.output, args.topk, buffer)
        where = ""
    rate = stats.classified / stats.seconds if stats.seconds else 0.0
    print(
        f"classified {stats.classified} of {stats.images} images{where} in {stats.seconds:.1f} s ({rate:.1f} img/s)"
        + (f"; skipped {stats.skipped} unreadable" if stats.skipped else "")
        + (f"; wrote {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 3 if stats.skipped else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import load
    from .bench import bench_pipeline, bench_runner, format_pipeline_table, format_table
    from .errors import UserError
    from .images.pipeline import HostPipeline, default_workers
    from .manifest import load_manifest

    manifest = load_manifest(args.model_file)
    batches = batch_sizes(args.batch)
    if args.size:
        try:
            h, w = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise UserError(f"--size {args.size}: expected HxW, e.g. 224x224") from None
    else:
        h = w = manifest.preprocessing.input_size
    pipeline_rows = []
    with contextlib.ExitStack() as stack:
        pipeline = None
        if args.images:
            from .images.inputs import collect_images

            paths = collect_images(args.images).paths
            if not paths:
                raise UserError("--images: no readable image files found")
            workers = default_workers() if args.workers is None else args.workers
            transform = dataclasses.replace(_transform(args, manifest), size=(h, w))
            # Started before the backend, like classify's.
            pipeline = stack.enter_context(HostPipeline(transform, max(batches), workers))
        runner = stack.enter_context(load(args.model_file, args.backend, **_load_options(args)))
        rows = bench_runner(runner, batches, (h, w), min_seconds=args.seconds, input_spec=manifest.input_spec)
        if pipeline is not None:
            backend_rate = next(r.images_per_s for r in rows if r.batch == max(batches))
            pipeline_rows = bench_pipeline(pipeline, runner, paths, backend_rate, args.seconds)
    print(f"{manifest.model} at {h}x{w}, input {manifest.input_spec.dtype} {manifest.input_spec.layout}")
    print(format_table(rows))
    if pipeline_rows:
        print()
        print(format_pipeline_table(pipeline_rows))
    return 0


def _decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reduced-decode",
        action="store_true",
        help="decode large JPEGs at reduced size (faster, NOT exact: results differ from timm's eval transform)",
    )
    p.add_argument(
        "--no-exif-transpose",
        action="store_true",
        help="ignore EXIF orientation (for models trained without it; model.json may already say so)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parity", help="compare with the PyTorch golden logits; non-zero exit past tolerance")
    _backend_args(p)
    p.add_argument("--golden", type=Path, help="golden.npz (default: beside MODEL_FILE)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], help="tolerance set (default: from the file name)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser("evaluate", help="top-1/top-5 on a labelled image folder or the digits test split")
    _backend_args(p)
    p.add_argument("--data", required=True, help="folder of class sub-folders, or 'digits'")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, help="decoding processes (default: CPU count; 0 decodes in-process)")
    _decode_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("classify", help="classify image files, folders (recursive) and globs")
    _backend_args(p)
    p.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--output", type=Path, help="results file: .jsonl or .csv (default: lines on stdout)")
    p.add_argument("--workers", type=int, help="decoding processes (default: CPU count; 0 decodes in-process)")
    p.add_argument("--ray", action="store_true", help="run on Ray Data (the ray extra); --workers = inference actors")
    p.add_argument("--ray-address", metavar="ADDR", help="--ray: join this cluster (HOST:PORT, ray://HOST:PORT, auto)")
    p.add_argument(
        "--gpus-per-worker", type=float, metavar="G", help="--ray: GPUs per actor (default 1 if any, else 0)"
    )
    _decode_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("bench", help="latency percentiles and images/s per batch size")
    _backend_args(p)
    p.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    p.add_argument("--size", help="HxW (default: the model's input size)")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per batch size")
    p.add_argument(
        "--images", nargs="+", metavar="PATH", help="also time the host pipeline and end-to-end classify on these"
    )
    p.add_argument("--workers", type=int, help="decode processes for --images (default: CPU count)")
    _decode_args(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
