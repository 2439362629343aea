"""Latency and throughput of a model file, per batch size, printed as a table; with
images, also the host pipeline alone and end-to-end classify beside the backend."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..core.manifest import InputSpec
from ..core.runner import Runner
from .images.inputs import ImageInputs
from .images.transform import ImagePipeline

WARMUP_ITERATIONS = 3  # untimed calls per batch size (allocations, autotuning, caches)
MIN_ITERATIONS = 10  # timed calls per batch size, however long --seconds is


@dataclass
class BenchRow:
    backend: str
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    images_per_s: float
    iterations: int


def wall_seconds(fn: Callable[[], object]) -> float:
    """One call of `fn`, timed on the host's clock."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def time_calls(
    fn: Callable[[], object],
    warmup: int,
    min_iters: int,
    min_seconds: float,
    measure: Callable[[Callable[[], object]], float] = wall_seconds,
) -> np.ndarray:
    """Per-call seconds after `warmup` calls; at least `min_iters` calls and `min_seconds`.
    `measure` times one call (default the host's clock; a GPU benchmark passes CUDA events).
    Every timing loop of the project's benchmarks is this one."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        times.append(measure(fn))
    return np.asarray(times)


def row(backend: str, batch: int, times: np.ndarray) -> BenchRow:
    p50, p90, p99 = np.percentile(times, [50, 90, 99]) * 1e3
    return BenchRow(backend, batch, float(p50), float(p90), float(p99), batch / float(np.median(times)), len(times))


def bench_runner(
    runner: Runner,
    batches: list[int],
    size: tuple[int, int],
    warmup: int = WARMUP_ITERATIONS,
    min_iters: int = MIN_ITERATIONS,
    min_seconds: float = 1.0,
    input_spec: InputSpec | None = None,
) -> list[BenchRow]:
    """The backend alone: random input of the model's dtype and layout, per batch size.

    A bar on a terminal (none in logs) counts the batch sizes done."""
    spec = input_spec or InputSpec()
    rng = np.random.default_rng(0)
    rows = []
    bar = tqdm(batches, desc="bench", unit="batch size", disable=None)
    for b in bar:
        bar.set_postfix_str(f"batch {b}: {warmup} warm-up, then >= {min_iters} calls and {min_seconds:g} s")
        x: np.ndarray
        if spec.is_uint8:
            x = rng.integers(0, 256, spec.shape(b, *size), dtype=np.uint8)
        else:
            x = rng.standard_normal(spec.shape(b, *size), dtype=np.float32)

        def call(x: np.ndarray = x) -> np.ndarray:
            return runner.infer(x)

        rows.append(row(runner.describe(), b, time_calls(call, warmup, min_iters, min_seconds)))
    return rows


def format_table(rows: list[BenchRow]) -> str:
    head = f"{'backend':<34} {'batch':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'img/s':>10} {'iters':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.backend:<34} {r.batch:>5} {r.p50_ms:>9.2f} {r.p90_ms:>9.2f} {r.p99_ms:>9.2f} {r.images_per_s:>10.1f} {r.iterations:>6}"
        )
    return "\n".join(lines)


@dataclass
class PipelineRow:
    stage: str
    batch: int
    workers: int
    images: int
    images_per_s: float
    of_backend: float | None = None  # end-to-end rate / backend-alone rate at this batch
    of_bound: float | None = None  # end-to-end rate / min(backend, host pipeline)


def passes(run_once: Callable[[], int], min_seconds: float) -> tuple[int, float]:
    """Repeat `run_once` (returns images done) until `min_seconds`; (images, seconds).
    Every pass-rate loop of the project's benchmarks is this one."""
    images, start = 0, time.perf_counter()
    while True:
        images += run_once()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return images, elapsed


def readable_images(pipeline: ImagePipeline, inputs: ImageInputs) -> tuple[list[Path], str]:
    """One pass of the pipeline over `inputs` (it also warms the workers and the file
    cache): the paths that decode, and a line on those that did not ("" when none failed).
    A benchmark is timed over the readable ones only, so its img/s counts decoded images."""
    readable: list[Path] = []
    failed = [(s.path, s.reason) for s in inputs.skipped]
    for b in pipeline.batches(inputs.paths):
        readable += [Path(b.paths[i]) for i in b.ok]
        failed += [(b.paths[i], reason) for i, reason in sorted(b.errors.items())]
    if not failed:
        return readable, ""
    first = f"{failed[0][0]}: {failed[0][1]}"
    return readable, f"skipped {len(failed)} unreadable of {inputs.count} --images (first: {first})"


def bench_pipeline(
    pipeline: ImagePipeline, runner: Runner, paths: list[Path], backend_rate: float, min_seconds: float
) -> list[PipelineRow]:
    """The host pipeline alone (decode and preprocess, no inference) and end-to-end
    classify through `runner`, both over `paths` repeated for at least `min_seconds`,
    after one warm-up pass (worker start-up and the file cache are not measured). Rates
    count decoded images only; pass the paths `readable_images` found."""
    from .classify import classify

    def host_pass() -> int:
        return sum(len(b.ok) for b in pipeline.batches(paths))  # decoded images only

    def end_to_end_pass() -> int:
        stats = classify(runner, pipeline, ImageInputs(list(paths)), None, None, topk=5, stream=io.StringIO())
        return stats.classified

    host_pass()
    n, seconds = passes(host_pass, min_seconds)
    host_rate = n / seconds
    end_to_end_pass()
    n2, seconds2 = passes(end_to_end_pass, min_seconds)
    e2e_rate = n2 / seconds2
    b, w = pipeline.batch, pipeline.workers
    return [
        PipelineRow(f"{pipeline.name} ({pipeline.transform.input.dtype})", b, w, n, host_rate),
        PipelineRow(
            "end-to-end classify", b, w, n2, e2e_rate, e2e_rate / backend_rate, e2e_rate / min(backend_rate, host_rate)
        ),
    ]


def format_pipeline_table(rows: list[PipelineRow]) -> str:
    head = (
        f"{'stage':<28} {'batch':>5} {'workers':>7} {'images':>7} {'img/s':>9} {'img/s/worker':>12} "
        f"{'of backend':>10} {'of min(backend,host)':>20}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        per_worker = f"{r.images_per_s / r.workers:.1f}" if r.workers else "-"
        of_backend = f"{r.of_backend:.1%}" if r.of_backend is not None else ""
        of_bound = f"{r.of_bound:.1%}" if r.of_bound is not None else ""
        lines.append(
            f"{r.stage:<28} {r.batch:>5} {r.workers:>7} {r.images:>7} {r.images_per_s:>9.1f} {per_worker:>12} "
            f"{of_backend:>10} {of_bound:>20}"
        )
    return "\n".join(lines)
