"""What each `python -m runtime` subcommand does, given its parsed arguments; exit code out.

runtime/app/cli/main.py builds the parser; these functions are its `func`s."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from . import exits

if TYPE_CHECKING:
    from ...core.loader import TensorRTOptions
    from ...core.manifest import Manifest
    from ..images.transform import ImageTransform


def _load_options(args: argparse.Namespace) -> TensorRTOptions:
    """The TensorRT runner's options from the flags _backend_args adds: made once here and
    passed through unchanged (to runtime.load, parity, classify on Ray)."""
    from ...core.loader import TensorRTOptions

    return TensorRTOptions(
        cuda_graph=args.cuda_graph,
        allow_missing_sidecar=args.no_sidecar,
        device=args.device,
        allow_engine_host_code=args.allow_engine_host_code,
    )


def cmd_parity(args: argparse.Namespace) -> int:
    from ...core.golden import run_parity

    result = run_parity(
        args.model_file, args.golden, args.backend, args.precision, _load_options(args), cpu_graph=not args.no_cpu_graph
    )
    print(result.to_json() if args.json else result.summary())
    return exits.OK if result else exits.CHECK_FAILED


def _transform(args: argparse.Namespace, manifest: Manifest) -> ImageTransform:
    """How this command turns images into the model's input: model.json's preprocessing
    and input spec, with the command line's decode options."""
    from ..images.transform import ImageTransform

    cfg = manifest.preprocessing
    if args.no_exif_transpose:
        cfg = dataclasses.replace(cfg, exif_transpose=False)
    return ImageTransform(cfg, manifest.input_spec, reduced_decode=args.reduced_decode)


def _warn_random(manifest: Manifest, what: str) -> None:
    if manifest.random_init:
        logging.getLogger("runtime").warning("%s has random weights; %s are meaningless", manifest.model, what)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ...core.loader import load
    from ...core.manifest import load_manifest
    from ..evaluate import evaluate, labelled_batches
    from ..images.pipeline import default_workers

    manifest = load_manifest(args.model_file)
    _warn_random(manifest, "its accuracy figures")
    transform = _transform(args, manifest)
    workers = default_workers() if args.workers is None else args.workers
    pipeline = _image_pipeline(args, transform, args.batch, 0 if args.data == "digits" else workers)
    # Decode workers start before the backend initialises CUDA or ONNX Runtime.
    with pipeline:
        with load(args.model_file, args.backend, _load_options(args), cpu_graph=not args.no_cpu_graph) as runner:
            batches = labelled_batches(args.data, transform, manifest.labels, args.batch, pipeline, wnids=manifest.wnids)
            acc = evaluate(runner, batches)
    if args.json:
        print(json.dumps({"model_file": str(args.model_file), **acc.to_dict()}))
    else:
        print(
            f"{args.model_file}: top-1 {acc.top1:.2%}  top-5 {acc.top5:.2%}  on {acc.images} images"
            + (f" ({acc.skipped} unreadable skipped)" if acc.skipped else "")
        )
    return exits.PARTIAL if acc.skipped else exits.OK  # as classify: a figure over fewer images than given


def cmd_classify(args: argparse.Namespace) -> int:
    from ...core.errors import UserError
    from ...core.loader import load
    from ...core.manifest import load_manifest
    from ...core.memory import batch_bytes, check_host_memory
    from ..classify import check_output_path, classify, output_format
    from ..images.inputs import collect_images
    from ..images.pipeline import default_workers

    on_ray = args.ray or args.ray_address is not None or args.gpus_per_worker is not None
    if on_ray:
        from ..ray.options import options_from_args
        from ..ray.sink import output_format as ray_output_format

        options = options_from_args(args, _load_options(args))  # flags and the ray extra are checked before any work
        ray_output_format(args.output)
    else:
        if args.output is not None and args.output.suffix.lower() == ".parquet":
            raise UserError(f"--output {args.output}: Parquet is written by --ray (the ray extra); without it use .csv or .jsonl")
        output_format(args.output)  # a bad file name fails before any work
    manifest = load_manifest(args.model_file)
    classes = manifest.declared_classes  # None: model.json does not say; the runner checks the graph's width
    if classes is not None and args.topk > classes:
        raise UserError(f"--topk {args.topk}: {manifest.model} has {classes} classes")
    _warn_random(manifest, "these predictions")
    inputs = collect_images(args.images)
    if not inputs.count:
        raise UserError("no images found (any format Pillow reads) in the given files, folders or globs")
    check_output_path(args.output, inputs.paths, args.model_file)
    transform = _transform(args, manifest)
    stats: Any  # ClassifyStats or RayStats: images, classified, skipped, seconds
    if on_ray:
        from ..ray import ray_classify

        nbytes = 2 * batch_bytes(args.batch, transform.sample_shape, transform.dtype.itemsize)
        check_host_memory(nbytes, f"--batch {args.batch} (a batch decoded and one inferred)")
        stats = ray_classify(args.model_file, inputs, args.output, options, transform)
        where = f" on Ray after {stats.startup_seconds:.1f} s of Ray start-up,"
    else:
        workers = default_workers() if args.workers is None else args.workers
        workers = min(workers, len(inputs.paths))
        pipeline = _image_pipeline(args, transform, args.batch, workers)
        # Decode workers start before the backend initialises CUDA or ONNX Runtime.
        with pipeline:
            with load(args.model_file, args.backend, _load_options(args), cpu_graph=not args.no_cpu_graph) as runner:
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
    return exits.PARTIAL if stats.skipped else exits.OK


def cmd_bench(args: argparse.Namespace) -> int:
    from ...core.errors import UserError
    from ...core.loader import load
    from ...core.manifest import load_manifest
    from ...core.memory import batch_bytes, check_host_memory
    from ..bench import bench_pipeline, bench_runner, format_pipeline_table, format_table, readable_images
    from ..images.pipeline import default_workers

    manifest = load_manifest(args.model_file)
    batches: list[int] = args.batch
    h, w = args.size or (manifest.preprocessing.input_size,) * 2
    spec = manifest.input_spec
    nbytes = batch_bytes(max(batches), spec.shape(1, h, w)[1:], 1 if spec.is_uint8 else 4)
    check_host_memory(nbytes, f"--batch {max(batches)} of {h}x{w} inputs")
    pipeline_rows = []
    unreadable = ""
    with contextlib.ExitStack() as stack:
        pipeline = None
        if args.images:
            from ..images.inputs import collect_images

            inputs = collect_images(args.images)
            if not inputs.count:
                raise UserError("--images: no readable image files found")
            workers = default_workers() if args.workers is None else args.workers
            transform = dataclasses.replace(_transform(args, manifest), size=(h, w))
            pipeline = _image_pipeline(args, transform, max(batches), workers)
            # Started before the backend, like classify's.
            stack.enter_context(pipeline)
            paths, unreadable = readable_images(pipeline, inputs)
            if unreadable and not paths:  # a benchmark over no data has no figures to give
                print(f"error: no --images could be decoded: {unreadable}", file=sys.stderr)
                return exits.PARTIAL
            if unreadable:
                logging.getLogger("runtime").warning("%s; timing the %d others", unreadable, len(paths))
        runner = stack.enter_context(load(args.model_file, args.backend, _load_options(args), cpu_graph=not args.no_cpu_graph))
        rows = bench_runner(runner, batches, (h, w), min_seconds=args.seconds, input_spec=manifest.input_spec)
        if pipeline is not None:
            backend_rate = next(r.images_per_s for r in rows if r.batch == max(batches))
            pipeline_rows = bench_pipeline(pipeline, runner, paths, backend_rate, args.seconds)
    print(f"{manifest.model} at {h}x{w}, input {manifest.input_spec.dtype} {manifest.input_spec.layout}")
    print(format_table(rows))
    if pipeline_rows:
        print()
        print(format_pipeline_table(pipeline_rows))
    if unreadable:
        print(f"{unreadable}; the pipeline figures count decoded images only", file=sys.stderr)
    return exits.PARTIAL if unreadable else exits.OK


def _image_pipeline(args: argparse.Namespace, transform: ImageTransform, batch: int, workers: int) -> Any:
    from ...core.loader import backend_for
    from ..images.feed import image_pipeline

    backend = backend_for(args.model_file, args.backend)
    return image_pipeline(args.decode, backend, transform, batch, workers, device=args.device)
