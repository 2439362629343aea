"""python -m runtime {parity,classify,evaluate,bench} MODEL_FILE ...

MODEL_FILE is an .engine (TensorRT) or an .onnx (ONNX Runtime) file in a folder that
also holds the model.json written by `python -m export onnx`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .cli_support import run_parsed


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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import load
    from .evaluate import evaluate, labelled_batches
    from .manifest import load_manifest

    manifest = load_manifest(args.model_file)
    if manifest.random_init:
        print(f"warning: {manifest.model} has random weights; its accuracy is meaningless", file=sys.stderr)
    with load(args.model_file, args.backend, **_load_options(args)) as runner:
        acc = evaluate(runner, labelled_batches(args.data, manifest.preprocessing, manifest.labels, args.batch))
    if args.json:
        print(json.dumps({"model_file": str(args.model_file), **acc.to_dict()}))
    else:
        print(
            f"{args.model_file}: top-1 {acc.top1:.2%}  top-5 {acc.top5:.2%}  on {acc.images} images"
            + (f" ({acc.skipped} unreadable skipped)" if acc.skipped else "")
        )
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    if args.ray or args.ray_address is not None or args.gpus_per_worker is not None:
        from .ray_batch import cmd_classify_ray

        return cmd_classify_ray(args)
    from . import load
    from .classify import classify
    from .manifest import load_manifest
    from .preprocess import find_images

    manifest = load_manifest(args.model_file)
    if manifest.random_init:
        print(f"warning: {manifest.model} has random weights; these predictions are meaningless", file=sys.stderr)
    paths = find_images(args.images)
    if not paths:
        from .errors import UserError

        raise UserError("no images found (jpg, jpeg, png, webp, bmp) in the given files, folders or globs")
    with load(args.model_file, args.backend, **_load_options(args)) as runner:
        stats = classify(
            runner, paths, manifest.preprocessing, manifest.labels, args.output, args.batch, args.topk, args.workers
        )
    rate = stats.classified / stats.seconds if stats.seconds else 0.0
    print(
        f"classified {stats.classified} of {stats.images} images in {stats.seconds:.1f} s ({rate:.1f} img/s)"
        + (f"; skipped {stats.skipped} unreadable" if stats.skipped else "")
        + (f"; wrote {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    return 3 if stats.skipped else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from . import load
    from .bench import bench_runner, format_table
    from .errors import UserError
    from .manifest import load_manifest

    manifest = load_manifest(args.model_file)
    try:
        batches = [int(b) for b in args.batch.split(",") if b.strip()]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise UserError(f"--batch {args.batch}: expected positive sizes like 1,8,32")
    if args.size:
        try:
            h, w = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise UserError(f"--size {args.size}: expected HxW, e.g. 224x224") from None
    else:
        h = w = manifest.preprocessing.input_size
    with load(args.model_file, args.backend, **_load_options(args)) as runner:
        rows = bench_runner(runner, batches, (h, w), min_seconds=args.seconds)
    if args.vs_torch:
        rows += _torch_rows(manifest.model, manifest.data.get("arch", {}), batches, (h, w), args.seconds, args.device)
    print(f"{manifest.model} at {h}x{w}")
    print(format_table(rows))
    return 0


def _torch_rows(name: str, arch: dict, batches: list[int], size: tuple[int, int], seconds: float, device: str) -> list:  # type: ignore[type-arg]
    """PyTorch eager figures for the same variant, measured in the same run.

    The only place runtime reaches for torch and convmixer, and only under --vs-torch:
    a comparison for development machines, never needed on a deployment target."""
    from .errors import require

    torch = require("torch", "--vs-torch needs PyTorch and this project's convmixer package")
    import convmixer

    from .bench import row, time_calls

    model = convmixer.ConvMixer(**arch).eval().to(device)
    rows = []
    rng = np.random.default_rng(0)
    for b in batches:
        x = torch.from_numpy(rng.standard_normal((b, 3, *size), dtype=np.float32))

        def call(x=x):  # type: ignore[no-untyped-def]
            with torch.inference_mode():
                out = model(x.to(device)).cpu().numpy()
            return out

        rows.append(row(f"torch-eager:{device}", b, time_calls(call, 3, 10, seconds)))
    return rows


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
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("bench", help="latency percentiles and images/s per batch size")
    _backend_args(p)
    p.add_argument("--batch", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    p.add_argument("--size", help="HxW (default: the model's input size)")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per batch size")
    p.add_argument("--vs-torch", action="store_true", help="add PyTorch eager figures (needs torch)")
    p.add_argument("--device", default="cpu", help="torch device for --vs-torch (cpu, cuda)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
