"""PyTorch baselines on a GPU, for the engines to be compared against: eager FP32, AMP
FP16, AMP FP16 with channels_last, and torch.compile (AMP FP16, channels_last), at
batch sizes 1 to 256, in one run.

    python benchmarks/gpu_baselines.py --model convmixer_768_32 [--checkpoint PATH]
        [--batch 1,2,4,8,16,32,64,128,256] [--seconds 1.0] [--modes eager,amp,channels_last,compile]

The input is already on the GPU (no host copies), so the figures are the model's compute
alone; GPU time comes from CUDA events around each call. Random weights run as fast as
trained ones. torch.compile's compilation (minutes for the largest variants) is done in
warm-up and not timed. Needs torch with CUDA and this project's convmixer package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.app.bench import time_calls  # noqa: E402
from runtime.app.cli.options import MAX_BATCH, MAX_SECONDS, guarded, real, whole_list  # noqa: E402
from runtime.core.errors import UserError  # noqa: E402

MODES = ("eager", "amp", "channels_last", "compile")
LABELS = {
    "eager": "eager FP32",
    "amp": "AMP FP16",
    "channels_last": "AMP FP16 + channels_last",
    "compile": "torch.compile (AMP FP16, channels_last)",
}


def gpu_seconds(fn: Callable[[], object]) -> float:
    """One call of `fn`, timed on the GPU with CUDA events (what it queued, not the host's wait)."""
    import torch

    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    fn()
    end.record()
    end.synchronize()
    return float(begin.elapsed_time(end)) / 1e3


def time_gpu(fn: Callable[[], object], warmup: int, min_iters: int, min_seconds: float) -> np.ndarray:
    """Per-call GPU milliseconds (CUDA events), after `warmup` calls: runtime.app.bench's loop."""
    import torch

    torch.cuda.synchronize()
    return time_calls(fn, warmup, min_iters, min_seconds, measure=gpu_seconds) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="convmixer_768_32", help="registered variant (default convmixer_768_32)")
    parser.add_argument("--checkpoint", type=Path, help="weights to load (default: seeded random weights)")
    parser.add_argument(
        "--batch",
        type=whole_list("--batch", 1, MAX_BATCH),
        default=[1, 2, 4, 8, 16, 32, 64, 128, 256],
        help="comma-separated batch sizes (default 1,2,4,...,256)",
    )
    parser.add_argument(
        "--seconds", type=real("--seconds", 0, MAX_SECONDS), default=1.0, help="minimum timed seconds per cell (default 1)"
    )
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)} (default: all)")
    return guarded(lambda: run(parser.parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    batches: list[int] = args.batch
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise UserError(f"--modes {args.modes}: unknown mode(s) {', '.join(unknown)}; expected {', '.join(MODES)}")
    try:
        import torch
    except ImportError:
        raise UserError("this benchmark needs PyTorch with CUDA (pip install torch, a CUDA build)") from None
    if not torch.cuda.is_available():
        raise UserError("this benchmark needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False)")

    import convmixer

    variant = convmixer.get_variant(args.model)
    size = variant.preprocessing.input_size
    torch.backends.cudnn.benchmark = True
    # FP32 means FP32: no TF32 tensor-core maths in the eager FP32 row.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    model = convmixer.create_model(args.model, args.checkpoint).to(device).eval()
    model_cl = convmixer.create_model(args.model, args.checkpoint).to(device).eval()
    model_cl = model_cl.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it
    # The network each mode calls; AMP modes run it under autocast, channels_last ones on NHWC memory.
    nets: dict[str, Callable[[torch.Tensor], object]] = {"eager": model, "amp": model, "channels_last": model_cl}
    if "compile" in modes:
        nets["compile"] = torch.compile(model_cl)

    def runner(mode: str, x: torch.Tensor) -> Callable[[], object]:
        net = nets[mode]
        if mode == "eager":
            return lambda: net(x)
        xin = x.contiguous(memory_format=torch.channels_last) if mode in ("channels_last", "compile") else x

        def call() -> object:
            with torch.autocast("cuda", dtype=torch.float16):
                return net(xin)

        return call

    results: dict[tuple[str, int], float] = {}
    with torch.inference_mode():
        for b in batches:
            x = torch.randn(b, 3, size, size, device=device)
            for mode in modes:
                warmup = 10 if mode == "compile" else 3
                ms = float(np.median(time_gpu(runner(mode, x), warmup, 10, args.seconds)))
                results[(mode, b)] = ms
                print(f"  {LABELS[mode]:<42} batch {b:>4}: {ms:8.3f} ms", file=sys.stderr, flush=True)

    name = torch.cuda.get_device_name()
    print(f"{args.model} at {size}x{size}, {name}, torch {torch.__version__}, input on the GPU, median GPU time")
    print(f"{'':>5} " + " ".join(f"{m:>24}" for m in modes))
    print(f"{'batch':>5} " + " ".join(f"{'img/s (ms)':>24}" for _ in modes) + "  best/eager")
    print("-" * (6 + 25 * len(modes) + 12))
    for b in batches:
        cells = [f"{b / results[(m, b)] * 1e3:>12.0f} ({results[(m, b)]:7.2f})" for m in modes]
        base = results.get(("eager", b))
        best = min(results[(m, b)] for m in modes)
        ratio = f"{base / best:>10.2f}x" if base else ""
        print(f"{b:>5} " + " ".join(f"{c:>24}" for c in cells) + "  " + ratio)
    print("modes: " + "; ".join(f"{m} = {LABELS[m]}" for m in modes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
