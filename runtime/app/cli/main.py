"""python -m runtime {parity,classify,evaluate,bench} MODEL_FILE ...

MODEL_FILE is an .engine (TensorRT) or an .onnx (ONNX Runtime) file in a folder that
also holds the model.json written by `python -m export onnx`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...core.artifacts import PRECISIONS
from ...core.loader import BACKENDS
from ..bench import MIN_ITERATIONS, WARMUP_ITERATIONS
from ..images.gpu import MODES as DECODE_MODES
from . import options as opts
from .commands import cmd_bench, cmd_classify, cmd_evaluate, cmd_parity


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_file", type=Path, help=".engine or .onnx file")
    p.add_argument("--backend", choices=BACKENDS, help="default: by file extension (.engine tensorrt, .onnx onnxruntime)")
    p.add_argument("--cuda-graph", action="store_true", help="TensorRT: replay each input shape from a CUDA graph")
    p.add_argument("--no-sidecar", action="store_true", help="TensorRT: run an engine with no .engine.json (trtexec)")
    p.add_argument(
        "--no-cpu-graph",
        action="store_true",
        help="ONNX Runtime on the CPU: run an INT8 graph as given, not the CPU INT8 graph made beside it "
        "(default: the CPU graph when calibration.json records it)",
    )
    p.add_argument(
        "--allow-engine-host-code",
        action="store_true",
        help="TensorRT: let the engine run host code it carries (version-compatible or lean-runtime engines); "
        "only for engines you trust (default: refused)",
    )
    p.add_argument(
        "--device",
        type=opts.whole("--device", 0, 63),
        default=0,
        help="TensorRT and --decode gpu: CUDA device index (after CUDA_VISIBLE_DEVICES; default 0)",
    )


def _decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--decode",
        choices=DECODE_MODES,
        default="cpu",
        help="where images are decoded and resized: cpu (Pillow), gpu (nvImageCodec + exact CUDA resize, "
        "TensorRT engines, the gpu-images extra) or auto (gpu when both are there); default cpu",
    )
    p.add_argument(
        "--reduced-decode",
        action="store_true",
        help="decode large JPEGs at reduced size (faster, NOT exact: results differ from timm's eval transform)",
    )
    p.add_argument(
        "--no-exif-transpose",
        action="store_true",
        help="ignore EXIF orientation (for models trained without it; model.json may already say so)",
    )


def _batch_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch", type=opts.whole("--batch", 1, opts.MAX_BATCH), default=32, help=f"1 to {opts.MAX_BATCH} (default 32)"
    )


def _workers_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--workers", type=opts.whole("--workers", 0, opts.max_workers), help=f"{what}; at most 4 per CPU")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=opts.VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("parity", help="compare with the PyTorch golden logits; non-zero exit past tolerance")
    _backend_args(p)
    p.add_argument("--golden", type=Path, help="golden.npz (default: beside MODEL_FILE)")
    p.add_argument("--precision", choices=PRECISIONS, help="tolerance set (default: from the file name)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=cmd_parity)

    p = sub.add_parser("classify", help="classify image files, folders (recursive) and globs")
    _backend_args(p)
    p.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    _batch_arg(p)
    p.add_argument(
        "--topk",
        type=opts.whole("--topk", 1, opts.MAX_TOPK),
        default=5,
        help="classes per image, 1 to the model's classes (default 5)",
    )
    p.add_argument("--output", type=Path, help="results file: .jsonl or .csv (default: lines on stdout)")
    _workers_arg(p, "decoding processes (default: CPU count; 0 decodes in-process)")
    p.add_argument("--ray", action="store_true", help="run on Ray Data (the ray extra); --workers = inference actors")
    p.add_argument("--ray-address", metavar="ADDR", help="--ray: join this cluster (HOST:PORT, ray://HOST:PORT, auto)")
    p.add_argument(
        "--gpus-per-worker",
        type=opts.real("--gpus-per-worker", 0, 64),
        metavar="G",
        help="--ray: GPUs per actor, 0 to 64 (default 1 if any, else 0)",
    )
    _decode_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("evaluate", help="top-1/top-5 on a labelled image folder or the digits test split")
    _backend_args(p)
    p.add_argument("--data", required=True, help="folder of class sub-folders, or 'digits'")
    _batch_arg(p)
    _workers_arg(p, "decoding processes (default: CPU count; 0 decodes in-process)")
    _decode_args(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON (default: a text summary)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="latency percentiles and images/s per batch size")
    _backend_args(p)
    p.add_argument(
        "--batch",
        type=opts.whole_list("--batch", 1, opts.MAX_BATCH),
        default=[1, 8, 32],
        help=f"comma-separated batch sizes, each 1 to {opts.MAX_BATCH} (default 1,8,32)",
    )
    p.add_argument(
        "--size",
        type=opts.height_width("--size", 1, opts.MAX_SIZE),
        help=f"HxW, each side 1 to {opts.MAX_SIZE} (default: the model's input size)",
    )
    p.add_argument(
        "--seconds",
        type=opts.real("--seconds", 0, opts.MAX_SECONDS),
        default=2.0,
        help=f"timed seconds per batch size, 0 to {opts.MAX_SECONDS:g} (default 2); each batch size first runs "
        f"{WARMUP_ITERATIONS} warm-up batches, then at least {MIN_ITERATIONS} timed ones however long they take",
    )
    p.add_argument(
        "--images", nargs="+", metavar="PATH", help="also time the host pipeline and end-to-end classify on these"
    )
    _workers_arg(p, "decode processes for --images (default: CPU count)")
    _decode_args(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    return opts.run_parsed(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
