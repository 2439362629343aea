"""Latency and throughput of a model file, per batch size, printed as a table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .runner import Runner


@dataclass
class BenchRow:
    backend: str
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    images_per_s: float
    iterations: int


def time_calls(fn: Callable[[], object], warmup: int, min_iters: int, min_seconds: float) -> np.ndarray:
    """Per-call seconds after `warmup` calls; at least `min_iters` and `min_seconds`."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def row(backend: str, batch: int, times: np.ndarray) -> BenchRow:
    p50, p90, p99 = np.percentile(times, [50, 90, 99]) * 1e3
    return BenchRow(backend, batch, float(p50), float(p90), float(p99), batch / float(np.median(times)), len(times))


def bench_runner(
    runner: Runner,
    batches: list[int],
    size: tuple[int, int],
    warmup: int = 3,
    min_iters: int = 10,
    min_seconds: float = 1.0,
) -> list[BenchRow]:
    rng = np.random.default_rng(0)
    rows = []
    for b in batches:
        x = rng.standard_normal((b, 3, *size), dtype=np.float32)

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
