"""A model file through the runtime beside PyTorch eager on the same variant, one table.

    python benchmarks/torch_eager.py build/convmixer_digits/model.onnx [--batch 1,8,32] [--device cuda]

The PyTorch side builds the variant from model.json's architecture (random weights:
speed does not depend on them) and times float32 NCHW input at the same batch sizes,
with the same timing loop as `python -m runtime bench`. This lives here, not in the
runtime, because the runtime never imports torch or the convmixer package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime import load  # noqa: E402
from runtime.app.bench import BenchRow, bench_runner, format_table, row, time_calls  # noqa: E402
from runtime.app.cli.options import MAX_BATCH, MAX_SECONDS, guarded, real, whole_list  # noqa: E402
from runtime.core.manifest import load_manifest  # noqa: E402


def torch_rows(
    arch: dict[str, object], batches: list[int], size: tuple[int, int], seconds: float, device: str
) -> list[BenchRow]:
    """PyTorch eager figures for the architecture `arch`, per batch size."""
    import torch

    import convmixer

    model = convmixer.ConvMixer(**arch).eval().to(device)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    rows = []
    for b in batches:
        x = torch.from_numpy(rng.standard_normal((b, 3, *size), dtype=np.float32))

        def call(x: torch.Tensor = x) -> np.ndarray:
            with torch.inference_mode():
                return model(x.to(device)).cpu().numpy()

        rows.append(row(f"torch-eager:{device}", b, time_calls(call, 3, 10, seconds)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_file", type=Path, help=".onnx or .engine with model.json beside it")
    parser.add_argument(
        "--batch", type=whole_list("--batch", 1, MAX_BATCH), default=[1, 8, 32], help="comma-separated batch sizes (default 1,8,32)"
    )
    parser.add_argument(
        "--seconds", type=real("--seconds", 0, MAX_SECONDS), default=2.0, help="minimum timed seconds per batch size (default 2)"
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default cpu)")
    return guarded(lambda: run(parser.parse_args(argv)))


def run(args: argparse.Namespace) -> int:
    batches: list[int] = args.batch
    manifest = load_manifest(args.model_file)
    size = (manifest.preprocessing.input_size,) * 2
    with load(args.model_file) as runner:
        rows = bench_runner(runner, batches, size, min_seconds=args.seconds, input_spec=manifest.input_spec)
    rows += torch_rows(manifest.data["arch"], batches, size, args.seconds, args.device)
    print(f"{manifest.model} at {size[0]}x{size[1]}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
