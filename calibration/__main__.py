"""python -m calibration DIR/model.onnx --data PATH|digits [--method entropy|max|percentile] [--limit N]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.cli_support import run_parsed

from .data import DEFAULT_LIMIT
from .quantize import METHODS


def run(args: argparse.Namespace) -> int:
    from .calibrate import calibrate

    path, report = calibrate(args.onnx, args.data, args.method, args.limit, args.exclude, args.force)
    if report is None:
        print(f"{path.with_name('model.int8.onnx')} is up to date ({path}); nothing to do")
        return 0
    held = report["heldout"]
    print(
        f"wrote {path.with_name('model.int8.onnx')} and {path} ({report['images_used']} images, {report['seconds']} s)"
    )
    if "int8_vs_fp32" in held:
        a = held["int8_vs_fp32"]
        print(
            f"held-out ({held['images']} images): INT8 vs FP32 top-1 agreement {a['top1_agreement']:.1%}, "
            f"logit cosine mean {a['cosine_mean']:.4f}"
        )
    for precision, acc in held.get("accuracy", {}).items():
        print(f"  {precision}: top-1 {acc['top1']:.2%}  top-5 {acc['top5']:.2%}")
    if report["images_skipped"]:
        print(f"skipped {report['images_skipped']} unreadable images (listed in {path})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration", description=__doc__)
    parser.add_argument("onnx", type=Path, help="the FP32 model.onnx from `python -m export onnx`")
    parser.add_argument(
        "--data", required=True, help="image folder (class sub-folders optional), .npy/.npz, or 'digits'"
    )
    parser.add_argument("--method", choices=METHODS, default="entropy", help="range calibration (default entropy)")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"calibration images (default {DEFAULT_LIMIT})"
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="WHAT",
        help="leave nodes in float: 'depthwise', an op type (Gemm) or a node-name glob; repeatable",
    )
    parser.add_argument("--force", action="store_true", help="recalibrate even when calibration.json is up to date")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.set_defaults(func=run)
    return run_parsed(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
