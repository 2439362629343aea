"""`ray_classify`: the driver of a classification on Ray Data, from inputs to the output file."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from ...core.errors import UserError, require
from ...core.loader import load
from ...core.manifest import load_manifest
from ..images.inputs import ImageInputs
from ..images.transform import ImageTransform
from .decoding import check_on_driver
from .options import RAY_HINT, RayOptions, RayStats
from .paths import all_utf8, arrow_names, name, text
from .session import ray_session
from .sink import output_format, sink
from .stages import BATCHES_PER_BLOCK, INFERENCE_FAILED, classify_dataset

log = logging.getLogger(__name__)


def ray_classify(
    model_file: str | Path,
    inputs: ImageInputs | list[Path] | list[str],
    output: Path | None = None,
    options: RayOptions = RayOptions(),
    transform: ImageTransform | None = None,
) -> RayStats:
    """Classify `inputs` on Ray Data and write one record per input to `output` (or stdout).

    Records are local classify's: {"path", "classes", "labels", "probs"} or {"path", "error"};
    inputs that runtime.app.images.inputs.collect_images already skipped are written with their reason.
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
    # So do a missing backend library and a bad sidecar, in the line local classify prints.
    runner = load(model_file, options.backend, options.tensorrt, cpu_graph=options.cpu_graph)
    runner.check_requirements()
    check_on_driver(options.decode, runner.backend)  # --decode gpu without the extra: one line, too
    ray = require("ray", RAY_HINT)
    pa = require("pyarrow", RAY_HINT)
    names = [str(p) for p in inputs.paths]
    # File names travel as their bytes (paths.py); Parquet keeps strings where it can.
    binary_paths = not all_utf8(names + [s.path for s in inputs.skipped])
    if binary_paths and fmt == "parquet":
        log.info("some file names are not UTF-8: the Parquet path column holds each name's bytes (binary)")
    classified = skipped = 0
    with sink(output, fmt, options.topk, binary_paths) as write, ray_session(options.address) as startup:
        start = time.perf_counter()
        if inputs.skipped:
            reasons = [text(s.reason) for s in inputs.skipped]
            write(
                pa.table({"path": arrow_names([s.path for s in inputs.skipped]), "error": reasons})
                .append_column("classes", pa.nulls(len(reasons), pa.list_(pa.int64())))
                .append_column("labels", pa.nulls(len(reasons), pa.list_(pa.string())))
                .append_column("probs", pa.nulls(len(reasons), pa.list_(pa.float64())))
            )
            for s in inputs.skipped:
                log.warning("skipped %s: %s", s.path, s.reason)
            skipped += len(reasons)
        if names:
            blocks = max(1, math.ceil(len(names) / (options.batch * BATCHES_PER_BLOCK)))
            dataset = ray.data.from_arrow(pa.table({"path": arrow_names(names)}), override_num_blocks=blocks)
            results = classify_dataset(dataset, model_file, options, transform=transform)
            for table in results.iter_batches(batch_format="pyarrow", batch_size=None):
                for row in table.to_pylist():
                    if row["error"] is not None and row["error"].startswith(INFERENCE_FAILED):
                        # The runner refused a batch: the job fails, as local classify does.
                        raise UserError(row["error"].removeprefix(INFERENCE_FAILED))
                    if row["error"] is not None:
                        skipped += 1
                        log.warning("skipped %s: %s", name(row["path"]), row["error"])
                    else:
                        classified += 1
                write(table)
        seconds = time.perf_counter() - start
    if classified + skipped != inputs.count:  # never expected; a lost file must not pass silently
        raise UserError(f"Ray returned {classified + skipped} results for {inputs.count} inputs")
    return RayStats(inputs.count, classified, skipped, seconds, startup)
