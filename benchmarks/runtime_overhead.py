"""What `runner.infer` costs over calling ONNX Runtime directly, measured side by side.

    python benchmarks/runtime_overhead.py build/convmixer_digits/model.onnx [--batch 1,8,32] [--rounds 7]

Both paths run the same session on the same input, interleaved round by round so that
machine noise hits both alike; the table gives medians and the ratio, per batch size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.app.bench import time_calls  # noqa: E402
from runtime.app.cli.options import MAX_BATCH, MAX_SECONDS, guarded, real, whole, whole_list  # noqa: E402
from runtime.core.backends.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from runtime.core.manifest import INPUT_NAME, OUTPUT_NAME, load_manifest  # noqa: E402


def overhead(runner: OnnxRuntimeRunner, batch: int, size: int, rounds: int, seconds: float) -> tuple[float, float]:
    """Median milliseconds per call of (session.run, runner.infer) at one batch size."""
    session = runner.session
    shape = runner.input_spec.shape(batch, size, size)  # float32 NCHW or uint8 NHWC
    rng = np.random.default_rng(0)
    x: np.ndarray
    if runner.input_spec.is_uint8:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        x = rng.standard_normal(shape, dtype=np.float32)
    direct_med, runner_med = [], []
    for _ in range(rounds):
        direct_med.append(np.median(time_calls(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: x}), 3, 20, seconds)))
        runner_med.append(np.median(time_calls(lambda: runner.infer(x), 3, 20, seconds)))
    return float(np.median(direct_med)) * 1e3, float(np.median(runner_med)) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", type=Path, help=".onnx with model.json beside it")
    parser.add_argument(
        "--batch", type=whole_list("--batch", 1, MAX_BATCH), default=[8], help="comma-separated batch sizes (default 8)"
    )
    parser.add_argument(
        "--rounds", type=whole("--rounds", 1, 1000), default=7, help="timed rounds; the median is reported (default 7)"
    )
    parser.add_argument(
        "--seconds", type=real("--seconds", 0, MAX_SECONDS), default=1.0, help="timed seconds per path per round (default 1)"
    )
    return guarded(lambda: run(parser.parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    batches: list[int] = args.batch
    manifest = load_manifest(args.onnx)
    size = manifest.preprocessing.input_size
    runner = OnnxRuntimeRunner(args.onnx, providers=["CPUExecutionProvider"])
    with runner:
        results = [(b, *overhead(runner, b, size, args.rounds, args.seconds)) for b in batches]
    print(f"{manifest.model}, {size}x{size}, ONNX Runtime CPU, {args.rounds} interleaved rounds, median ms")
    head = f"{'batch':>5} {'session.run (direct)':>21} {'runner.infer':>13} {'overhead':>9}"
    print(head)
    print("-" * len(head))
    for b, d, r in results:
        print(f"{b:>5} {d:>21.3f} {r:>13.3f} {100 * (r / d - 1):>8.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
