"""FP32, FP16, TensorRT's INT8 graph and the CPU INT8 graph on ONNX Runtime's CPU, side by side.

    python benchmarks/cpu_precisions.py build/convmixer_768_32/model.onnx [--batch 1,4] [--threads 2] [--rounds 5]

Every graph beside model.onnx that exists is loaded in one process (ORT_ENABLE_ALL, the
given intra-op threads) and timed interleaved, round by round and batch by batch, so that
machine noise hits them alike. The table gives the median of the per-round medians, in
ms, and the speed relative to FP32 (FP32 time / graph time). The header names the CPU and
the instruction sets its integer kernels depend on (/proc/cpuinfo): AVX2, AVX-512 VNNI,
AVX-VNNI, AMX on x86; the dot-product (asimddp) and i8mm extensions on ARM64.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.app.bench import time_calls  # noqa: E402
from runtime.app.cli.options import MAX_BATCH, MAX_SECONDS, guarded, real, whole, whole_list  # noqa: E402
from runtime.core.artifacts import FP16, FP32, INT8, cpu_int8_for, onnx_for_precision  # noqa: E402
from runtime.core.backends.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from runtime.core.errors import UserError  # noqa: E402
from runtime.core.manifest import load_manifest  # noqa: E402

# /proc/cpuinfo flag -> the name printed; in the order printed.
INSTRUCTION_SETS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX-INT8",
    "asimddp": "ARM dot-product (asimddp)",
    "i8mm": "ARM i8mm",
}


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """'<model name> | <instruction sets>' from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{platform.processor() or platform.machine()} | instruction sets unknown (no {cpuinfo})"
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    name = fields.get("model name") or fields.get("Hardware") or fields.get("CPU part") or platform.machine()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    found = [label for flag, label in INSTRUCTION_SETS.items() if flag in flags]
    return f"{name} ({platform.machine()}) | {', '.join(found) or 'none of ' + ', '.join(INSTRUCTION_SETS.values())}"


def graphs(model_onnx: Path) -> dict[str, Path]:
    """The graphs to compare, by label, those that exist beside model.onnx."""
    found = {
        "FP32": onnx_for_precision(model_onnx, FP32),
        "FP16": onnx_for_precision(model_onnx, FP16),
        "INT8 (TensorRT graph)": onnx_for_precision(model_onnx, INT8),
        "INT8 (CPU graph)": cpu_int8_for(model_onnx),
    }
    return {label: path for label, path in found.items() if path.is_file()}


def measure(
    runners: dict[str, OnnxRuntimeRunner], batches: list[int], size: int, rounds: int, iters: int, seconds: float
) -> dict[tuple[int, str], float]:
    """Median over rounds of each (batch, graph)'s median ms per call; interleaved."""
    rng = np.random.default_rng(0)
    per_round: dict[tuple[int, str], list[float]] = {}
    for r in range(rounds):
        for batch in batches:
            for label, runner in runners.items():
                spec = runner.input_spec
                shape = spec.shape(batch, size, size)
                x = (
                    rng.integers(0, 256, shape, dtype=np.uint8)
                    if spec.is_uint8
                    else rng.standard_normal(shape, dtype=np.float32)
                )
                times = time_calls(functools.partial(runner.infer, x), 2 if r == 0 else 1, iters, seconds)
                per_round.setdefault((batch, label), []).append(float(np.median(times)) * 1e3)
    return {k: float(np.median(v)) for k, v in per_round.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", type=Path, help="model.onnx, with model.json and the other graphs beside it")
    parser.add_argument(
        "--batch", type=whole_list("--batch", 1, MAX_BATCH), default=[1, 4], help="comma-separated (default 1,4)"
    )
    parser.add_argument("--threads", type=whole("--threads", 1, 1024), default=2, help="intra-op threads (default 2)")
    parser.add_argument("--size", type=whole("--size", 1, 4096), help="input side (default: the model's)")
    parser.add_argument("--rounds", type=whole("--rounds", 1, 1000), default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--iters", type=whole("--iters", 1, 10_000), default=3, help="least calls per graph per round (default 3)")
    parser.add_argument(
        "--seconds", type=real("--seconds", 0, MAX_SECONDS), default=1.0, help="least seconds per graph per round (default 1.0)"
    )
    return guarded(lambda: run(parser.parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    import onnxruntime

    manifest = load_manifest(args.onnx)
    size = args.size or manifest.preprocessing.input_size
    found = graphs(args.onnx)
    if FP32.upper() not in found:
        raise UserError(f"{args.onnx}: no such file")
    runners = {
        label: OnnxRuntimeRunner(path, ["CPUExecutionProvider"], threads=args.threads) for label, path in found.items()
    }
    for runner in runners.values():
        runner.activate()
    try:
        medians = measure(runners, args.batch, size, args.rounds, args.iters, args.seconds)
    finally:
        for runner in runners.values():
            runner.deactivate()
    print(
        f"{manifest.model}, {size}x{size}, ONNX Runtime {onnxruntime.__version__} CPU, {args.threads} threads, "
        f"{args.rounds} interleaved rounds, median ms"
    )
    print(f"CPU: {cpu_description()}")
    head = f"{'batch':>5}  {'graph':<22} {'ms':>10} {'x FP32':>7}"
    print(head)
    print("-" * len(head))
    for batch in args.batch:
        base = medians[(batch, "FP32")]
        for label in runners:
            ms = medians[(batch, label)]
            print(f"{batch:>5}  {label:<22} {ms:>10.2f} {base / ms:>7.2f}")
    missing = sorted({"FP16", "INT8 (TensorRT graph)", "INT8 (CPU graph)"} - set(found))
    if missing:
        print(f"not there, not timed: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
