"""python -m runtime {parity,classify,evaluate,bench} MODEL_FILE ...

MODEL_FILE is an .engine (TensorRT) or an .onnx (ONNX Runtime) file in a folder that
also holds the model.json written by `python -m export onnx`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli_support import guarded, setup_logging


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file", type=Path, help=".engine or .onnx file")
    p.add_argument("--backend", choices=["tensorrt", "onnxruntime"], help="default: by file extension")


def cmd_parity(args: argparse.Namespace) -> int:
    from .parity_check import run_parity

    result = run_parity(args.model_file, args.golden, args.backend, args.precision)
    print(result.to_json() if args.json else result.summary())
    return 0 if result else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import load
    from .evaluate import evaluate, labelled_batches
    from .manifest import load_manifest

    manifest = load_manifest(args.model_file)
    assert manifest is not None
    if manifest.random_init:
        print(f"warning: {manifest.model} has random weights; its accuracy is meaningless", file=sys.stderr)
    with load(args.model_file, args.backend) as runner:
        acc = evaluate(runner, labelled_batches(args.data, manifest.preprocessing, manifest.labels, args.batch))
    if args.json:
        print(json.dumps({"model_file": str(args.model_file), **acc.to_dict()}))
    else:
        print(
            f"{args.model_file}: top-1 {acc.top1:.2%}  top-5 {acc.top5:.2%}  on {acc.images} images"
            + (f" ({acc.skipped} unreadable skipped)" if acc.skipped else "")
        )
    return 0


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
