"""What `runner.infer` costs over calling ONNX Runtime directly, measured side by side.

    python benchmarks/runtime_overhead.py build/convmixer_digits/model.onnx [--batch 8] [--rounds 7]

Both paths run the same session on the same input, interleaved round by round so that
machine noise hits both alike; the table gives medians and the ratio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.backends.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from runtime.bench import time_calls  # noqa: E402
from runtime.manifest import INPUT_NAME, OUTPUT_NAME, load_manifest  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per path per round")
    args = parser.parse_args()

    manifest = load_manifest(args.onnx)
    size = manifest.preprocessing.input_size
    direct_med, runner_med = [], []
    with OnnxRuntimeRunner(args.onnx, providers=["CPUExecutionProvider"]) as runner:
        session = runner.session
        shape = runner.input_spec.shape(args.batch, size, size)  # float32 NCHW or uint8 NHWC
        rng = np.random.default_rng(0)
        if runner.input_spec.is_uint8:
            x = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            x = rng.standard_normal(shape, dtype=np.float32)
        for _ in range(args.rounds):
            direct_med.append(
                np.median(time_calls(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: x}), 3, 20, args.seconds))
            )
            runner_med.append(np.median(time_calls(lambda: runner.infer(x), 3, 20, args.seconds)))
    d, r = float(np.median(direct_med)) * 1e3, float(np.median(runner_med)) * 1e3
    print(f"{manifest.model}, batch {args.batch}, {size}x{size}, ONNX Runtime CPU, {args.rounds} interleaved rounds")
    print(f"{'path':<24} {'median ms':>10}")
    print(f"{'session.run (direct)':<24} {d:>10.3f}")
    print(f"{'runner.infer':<24} {r:>10.3f}")
    print(f"{'overhead':<24} {100 * (r / d - 1):>9.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
