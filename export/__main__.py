"""python -m export {onnx,fp16,engine} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.cli_support import guarded, setup_logging


def cmd_onnx(args: argparse.Namespace) -> int:
    from runtime.errors import require

    require("torch", "the onnx step needs the export extra: pip install -e '.[export]'")
    require("onnx", "the onnx step needs the export extra: pip install -e '.[export]'")
    import convmixer
    from runtime.errors import UserError

    if args.model not in convmixer.list_models():
        raise UserError(f"unknown model {args.model!r}; registered: {', '.join(convmixer.list_models())}")
    from .onnx_export import export_onnx

    try:
        result = export_onnx(args.model, args.checkpoint, args.out, args.golden_images, args.seed)
    except convmixer.CheckpointError as exc:  # convmixer stands alone; translate at the boundary
        raise UserError(str(exc)) from None
    print(f"wrote {result.onnx}\nwrote {result.manifest}\nwrote {result.golden}")
    return 0


def cmd_fp16(args: argparse.Namespace) -> int:
    from .fp16 import convert_fp16

    print(f"wrote {convert_fp16(args.onnx)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("onnx", help="export a variant to ONNX with golden logits")
    p.add_argument("--model", required=True, help="registered variant, e.g. convmixer_768_32")
    p.add_argument("--checkpoint", type=Path, help=".pth/.pth.tar/.bin/.safetensors (official, timm or mmpretrain)")
    p.add_argument("--out", type=Path, help="output folder (default build/MODEL)")
    p.add_argument("--golden-images", type=Path, help="folder of images for golden.npz (default: seeded random inputs)")
    p.add_argument("--seed", type=int, default=0, help="seed for random weights and random golden inputs")
    p.set_defaults(func=cmd_onnx)

    p = sub.add_parser("fp16", help="write model.fp16.onnx (FP16 compute, FP32 I/O), checked against golden logits")
    p.add_argument("onnx", type=Path, help="the FP32 model.onnx")
    p.set_defaults(func=cmd_fp16)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
