"""python -m export {onnx,fp16,engine,layers,check,triton} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.app.cli import exits
from runtime.app.cli.options import MAX_BATCH, VERBOSE_HELP, run_parsed, whole
from runtime.core.artifacts import PRECISIONS, engine_path_for

from .cli_args import add_keep_fp32


def cmd_onnx(args: argparse.Namespace) -> int:
    from runtime.core.errors import require

    require("torch", "the onnx step needs the export extra: pip install -e '.[export]'")
    require("onnx", "the onnx step needs the export extra: pip install -e '.[export]'")
    import convmixer
    from runtime.core.errors import UserError

    if args.model not in convmixer.list_models():
        raise UserError(f"unknown model {args.model!r}; registered: {', '.join(convmixer.list_models())}")
    from .onnx_export import export_onnx

    try:
        result = export_onnx(
            args.model,
            args.checkpoint,
            args.out,
            args.golden_images,
            args.seed,
            input_dtype={"float": "float32", "uint8": "uint8"}[args.input],
            ema=args.ema,
            exif_transpose=not args.no_exif_transpose,
        )
    except convmixer.CheckpointError as exc:  # convmixer stands alone; translate at the boundary
        raise UserError(str(exc)) from None
    print(f"wrote {result.onnx}\nwrote {result.manifest}\nwrote {result.golden}")
    return 0


def cmd_fp16(args: argparse.Namespace) -> int:
    from .fp16 import convert_fp16

    print(f"wrote {convert_fp16(args.onnx, keep_fp32=args.keep_fp32)}")
    return 0


def cmd_engine(args: argparse.Namespace) -> int:
    from runtime.core.errors import UserError
    from runtime.core.flavours import TENSORRT_RTX

    from .engine import build_engine, checked_options
    from .engine_options import options_from_args, trtexec_command

    options = options_from_args(args)  # no --shapes: the model's default, filled in when checked
    if args.print_trtexec:
        options = checked_options(args.onnx, options)
        if options.flavour == TENSORRT_RTX:
            raise UserError(f"--print-trtexec: {TENSORRT_RTX} ships no trtexec; build with python -m export engine")
        print(trtexec_command(args.onnx, args.out or engine_path_for(args.onnx), options))
        return 0
    from .engine import remove_build

    path, meta = build_engine(args.onnx, options, args.out)
    where = f"on {meta.gpu_name}" if meta.built_with_gpu else "without a GPU"
    try:  # a signal up to the last line still means no engine (exit 130 or 143)
        print(
            f"wrote {path} ({meta.precision}, {meta.flavour} {meta.library_version}, {where}, "
            f"targets {','.join(meta.target_compute_capabilities)}, {meta.build_seconds} s)",
            flush=True,
        )
    except KeyboardInterrupt:
        remove_build(path)
        raise
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    import json

    from .layers import read_report

    report = read_report(args.engine)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0


def cmd_triton(args: argparse.Namespace) -> int:
    from runtime.core.artifacts import TRITON_PLAN_NAME

    from .triton import write_repository
    from .triton_files import pick_precision

    precision = args.precision or pick_precision(args.build_dir, args.format)
    target = write_repository(
        args.build_dir, args.out, precision, args.max_batch, args.format, args.name, args.instances
    )
    kind = "TensorRT engine" if (target / "1" / TRITON_PLAN_NAME).is_file() else "ONNX graph"
    print(f"wrote {target} ({precision}, {kind}); serve it with: tritonserver --model-repository {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .trt.host import all_statuses

    statuses = all_statuses()
    for status in statuses:
        print(status.line())
    ok = any(s.can_run for s in statuses) if args.run else any(s.can_build for s in statuses)
    return exits.OK if ok else exits.BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    from .engine_options import add_arguments as add_engine_options  # imports neither torch nor TensorRT

    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("onnx", help="export a variant to ONNX with golden logits")
    p.add_argument("--model", required=True, help="registered variant, e.g. convmixer_768_32")
    p.add_argument("--checkpoint", type=Path, help=".pth/.pth.tar/.bin/.safetensors (official, timm or mmpretrain)")
    p.add_argument("--out", type=Path, help="output folder (default build/MODEL)")
    p.add_argument("--golden-images", type=Path, help="folder of images for golden.npz (default: seeded random inputs)")
    p.add_argument(
        "--seed", type=whole("--seed", 0, 2**32 - 1), default=0, help="seed for random weights and random golden inputs"
    )
    p.add_argument(
        "--input",
        choices=["float", "uint8"],
        default="float",
        help="float: NCHW float32, normalised on the host (default; DLA, tensor feeds); "
        "uint8: NHWC uint8 pixels, normalised inside the graph (4x fewer bytes to copy)",
    )
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="take the checkpoint's EMA weights (--ema) or raw ones (--no-ema); default: EMA when present",
    )
    p.add_argument(
        "--no-exif-transpose",
        action="store_true",
        help="record in model.json that images are NOT turned upright by their EXIF orientation",
    )
    p.set_defaults(func=cmd_onnx)

    p = sub.add_parser("fp16", help="write model.fp16.onnx (FP16 compute, FP32 I/O), checked against golden logits")
    p.add_argument("onnx", type=Path, help="the FP32 model.onnx")
    add_keep_fp32(p)
    p.set_defaults(func=cmd_fp16)

    p = sub.add_parser(
        "engine",
        help="build a TensorRT (needs a GPU) or TensorRT-RTX (no GPU needed) engine from model[.fp16|.int8].onnx",
    )
    p.add_argument("onnx", type=Path, help="model.onnx, model.fp16.onnx or model.int8.onnx")
    add_engine_options(p)  # every build option's flag, from the table in export/engine_options/
    p.add_argument("--print-trtexec", action="store_true", help="print the equivalent trtexec command; build nothing")
    p.add_argument("--out", type=Path, help="engine path (default: model.<precision>.engine beside the ONNX)")
    p.set_defaults(func=cmd_engine)

    p = sub.add_parser("triton", help="write a Triton Inference Server model repository for one precision")
    p.add_argument("build_dir", type=Path, help="build/<model>/ with model.json and the chosen precision's files")
    p.add_argument("--out", type=Path, required=True, help="the model repository folder (created if absent)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="which precision to serve (default: the most compact one the folder has: int8, then fp16, then fp32)",
    )
    p.add_argument(
        "--max-batch",
        type=whole("--max-batch", 1, MAX_BATCH),
        help="batch limit (default: the engine's profile; 32 for ONNX)",
    )
    p.add_argument("--format", choices=["engine", "onnx"], help="default: the engine if there is one, else the ONNX")
    p.add_argument("--name", help="model name in the repository (default: the model's, e.g. convmixer_768_32)")
    p.add_argument(
        "--instances", type=whole("--instances", 1, 64), default=1, help="model instances per GPU (default 1)"
    )
    p.set_defaults(func=cmd_triton)

    p = sub.add_parser("layers", help="per-layer precision table of an engine (from its model.<precision>.layers.json)")
    p.add_argument("engine", type=Path, help="model.<precision>.engine (or its .layers.json)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser(
        "check", help="per flavour: can this machine build engines, and run them (exit 0 when one can build)"
    )
    p.add_argument("--run", action="store_true", help="exit 0 only when some flavour can also run engines here")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
