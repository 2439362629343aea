"""python -m export {onnx,fp16,engine} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.cli_support import run_parsed


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

    print(f"wrote {convert_fp16(args.onnx, keep_fp32=args.keep_fp32)}")
    return 0


def cmd_engine(args: argparse.Namespace) -> int:
    from runtime.manifest import load_manifest

    from .profiles import EngineOptions, Profile, default_profile, engine_path_for, trtexec_command, validate

    manifest = load_manifest(args.onnx)
    profiles = [Profile.parse(s) for s in args.shapes] or [default_profile(manifest.preprocessing.input_size)]
    options = EngineOptions(
        profiles=profiles,
        workspace_mib=args.workspace,
        opt_level=args.opt_level,
        timing_cache=args.timing_cache,
        hardware_compatibility=args.hardware_compatibility,
        version_compatible=args.version_compatible,
        dla_core=args.dla_core,
    )
    from runtime.parity import precision_of

    validate(
        options, manifest.patch_size, precision_of(args.onnx.name), str(manifest.data.get("arch", {}).get("act", ""))
    )
    if args.print_trtexec:
        print(trtexec_command(args.onnx, args.out or engine_path_for(args.onnx), options))
        return 0
    from .engine import build_engine

    path, meta = build_engine(args.onnx, options, args.out)
    print(f"wrote {path} ({meta.precision}, {meta.build_seconds} s, TensorRT {meta.library_version}, {meta.gpu_name})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .engine import check_prerequisites

    version, gpu, capability = check_prerequisites()
    print(f"TensorRT {version}, {gpu} (compute capability {capability})")
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
    p.add_argument(
        "--keep-fp32",
        action="append",
        default=[],
        metavar="PATTERN",
        help="keep matching layers in FP32 (FP16 overflow): an op type, a node-name glob or 'depthwise'; repeatable",
    )
    p.set_defaults(func=cmd_fp16)

    p = sub.add_parser("engine", help="build a TensorRT engine from model[.fp16|.int8].onnx (needs TensorRT and a GPU)")
    p.add_argument("onnx", type=Path, help="model.onnx, model.fp16.onnx or model.int8.onnx")
    p.add_argument(
        "--shapes",
        action="append",
        default=[],
        metavar="MIN:OPT:MAX",
        help="optimization profile, e.g. 1x3x224x224:32x3x224x224:64x3x224x224; repeat for "
        "several resolution buckets (default: batch 1..64, opt 32, at the model's input size)",
    )
    p.add_argument("--workspace", type=int, metavar="MIB", help="builder workspace limit in MiB (keep small on Jetson)")
    p.add_argument("--opt-level", type=int, default=3, help="builder optimization level 0..5 (default 3)")
    p.add_argument("--timing-cache", type=Path, metavar="PATH", help="load and save a timing cache: rebuilds go faster")
    p.add_argument(
        "--hardware-compatibility",
        choices=["none", "ampere_plus", "same_compute_capability"],
        default="none",
        help="build an engine that runs on other GPU architectures (slower)",
    )
    p.add_argument("--version-compatible", action="store_true", help="engine runs on later TensorRT of the same major")
    p.add_argument(
        "--dla-core", type=int, metavar="N", help="Jetson: run on DLA core N with GPU fallback (static shapes)"
    )
    p.add_argument("--print-trtexec", action="store_true", help="print the equivalent trtexec command; build nothing")
    p.add_argument("--out", type=Path, help="engine path (default: model.<precision>.engine beside the ONNX)")
    p.set_defaults(func=cmd_engine)

    p = sub.add_parser("check", help="check that TensorRT and a CUDA device are usable (what `make engine` runs first)")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
