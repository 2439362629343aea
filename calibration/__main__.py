"""python -m calibration DIR/model.onnx --data PATH|digits [--method entropy|max|percentile] [--limit N] [--max-drop PP]

Writes model.int8.onnx (for TensorRT) and, from the same activation ranges, model.int8.cpu.onnx
(for ONNX Runtime's CPU: uint8 activations, Q/DQ on outputs too; --no-cpu-graph skips it).
When the --max-drop budget cannot be met for a graph, it is written only with --best-effort
(exit 0); without it the exit code is 3 (runtime.app.cli.exits.PARTIAL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from export.cli_args import add_keep_fp32
from runtime.app.cli import exits
from runtime.app.cli.options import VERBOSE_HELP, run_parsed, whole
from runtime.core.artifacts import INT8, chart_path, cpu_int8_for, onnx_for_precision

from .data import DEFAULT_LIMIT
from .ranges import DEFAULT_PERCENTILE, METHODS

BUDGET_MISSED = exits.PARTIAL


def print_ranking(mixed: dict[str, Any]) -> None:
    """The layers, most sensitive first, with the ones kept in FP16 marked."""
    rows = mixed["sensitivity"]
    width = max([len("layer")] + [len(r["node"]) for r in rows])
    print(f"{'rank':>4}  {'layer':<{width}}  {'op':<5}  {'cosine loss':>11}  {'top-1 drop':>10}  precision")
    for r in rows:
        precision = "FP16 (kept)" if r["kept_fp16"] else "INT8"
        print(
            f"{r['rank']:>4}  {r['node']:<{width}}  {r['op_type']:<5}  {r['cosine_loss']:>11.3e}  "
            f"{r['drop_pp']:>8.2f}pp  {precision}"
        )


def run(args: argparse.Namespace) -> int:
    from .calibrate import CalibrationOptions, calibrate

    options = CalibrationOptions(
        method=args.method,
        percentile=args.percentile,
        limit=args.limit,
        exclude=tuple(args.exclude),
        keep_fp32=tuple(args.keep_fp32),
        max_drop=args.max_drop,
        best_effort=args.best_effort,
        cpu_graph=not args.no_cpu_graph,
    )
    path, report = calibrate(args.onnx, args.data, options, args.force)
    int8 = onnx_for_precision(args.onnx, INT8)
    if report is None:
        print(f"{int8} is up to date ({path}); nothing to do")
        return 0
    mixed = report.get("mixed_precision")
    held = report.get("heldout") or {}
    if report.get("weights") == "random-init" and (mixed is not None or held.get("images")):
        # Once, and only where figures follow (an up-to-date run prints none).
        print("random weights: the figures below are meaningless (export with --checkpoint for real ones)")
    if mixed is not None:
        print_ranking(mixed)
        kept = ", ".join(mixed["kept_fp16"]) or "none"
        verdict = "within" if mixed["budget_met"] else "CANNOT MEET"
        print(
            f"mixed precision: {verdict} the {mixed['max_drop_pp']:g}-point budget; "
            f"{len(mixed['kept_fp16'])} layer(s) kept in FP16 ({kept}); "
            f"held-out top-1 drop {mixed['drop_pp']:.2f} points ({mixed['metric']}); chart {chart_path(path)}"
        )
    if report["int8_onnx_sha256"] is None:
        print_cpu_graph(report, cpu_int8_for(args.onnx))
        assert mixed is not None  # only a missed --max-drop budget leaves no graph
        print(
            f"error: the --max-drop budget cannot be met; the best was a {mixed['drop_pp']:.2f}-point drop "
            f"with {len(mixed['kept_fp16'])} layer(s) in FP16. {int8.name} not written (--best-effort writes it)",
            file=sys.stderr,
        )
        return BUDGET_MISSED
    print(f"wrote {int8} and {path} ({report['images_used']} images, calibration {report['calibration_seconds']} s)")
    if not held.get("images"):
        print(
            f"no held-out report: all {report['images_used']} usable images went to calibration, none were left "
            "to measure INT8 against FP32 on; give a larger set (or a higher --limit) for one"
        )
    elif "accuracy" not in held:
        print("no held-out accuracy: the held-out images carry no labels (class sub-folders give them)")
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
    if print_cpu_graph(report, cpu_int8_for(args.onnx)):
        cpu = cpu_int8_for(args.onnx).name
        print(f"error: {cpu} not written: the --max-drop budget cannot be met (--best-effort writes it)", file=sys.stderr)
        return BUDGET_MISSED
    return 0


def print_cpu_graph(report: dict[str, Any], cpu: Path) -> bool:
    """The CPU INT8 graph's lines of the report; True when its --max-drop budget was missed
    and it was not written."""
    if "cpu_int8_onnx_sha256" not in report:
        return False
    mixed = report.get("cpu_mixed_precision")
    if mixed is not None:
        verdict = "within" if mixed["budget_met"] else "CANNOT MEET"
        print(
            f"{cpu.name}: {verdict} the {mixed['max_drop_pp']:g}-point budget; {len(mixed['kept_fp16'])} layer(s) "
            f"kept in FP32; held-out top-1 drop {mixed['drop_pp']:.2f} points ({mixed['metric']})"
        )
    if report["cpu_int8_onnx_sha256"] is None:
        print(f"{cpu.name}: not written, the --max-drop budget cannot be met (--best-effort writes it)")
        return True
    held = report["cpu_heldout"]
    line = f"wrote {cpu} (ONNX Runtime CPU layout)"
    if "int8_vs_fp32" in held:
        a = held["int8_vs_fp32"]
        line += f"; held-out: top-1 agreement with FP32 {a['top1_agreement']:.1%}, logit cosine mean {a['cosine_mean']:.4f}"
    print(line)
    acc = held.get("accuracy", {}).get(INT8)
    if acc is not None:
        print(f"  int8 (CPU graph): top-1 {acc['top1']:.2%}  top-5 {acc['top5']:.2%}")
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m calibration", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("onnx", type=Path, help="the FP32 model.onnx from `python -m export onnx`")
    parser.add_argument(
        "--data", required=True, help="image folder (class sub-folders optional), .npy/.npz, or 'digits'"
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="entropy",
        help="activation ranges: entropy (KL, 2048 bins, as TensorRT), max, or percentile (default entropy)",
    )
    parser.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help=f"with --method percentile: the percentile of |x| kept, in (0, 100] (default {DEFAULT_PERCENTILE})",
    )
    parser.add_argument(
        "--limit",
        type=whole("--limit", 1, 1_000_000),
        default=DEFAULT_LIMIT,
        help=f"calibration images (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave matching layers unquantized, in FP16: 'depthwise', an op type (Gemm) or a node-name glob; repeatable",
    )
    add_keep_fp32(parser, unquantized=True)
    parser.add_argument(
        "--max-drop",
        type=float,
        metavar="PP",
        help="mixed precision: keep the most INT8-sensitive layers in FP16 until the held-out top-1 drop "
        "against FP32 is at most PP points; writes calibration.png",
    )
    parser.add_argument(
        "--best-effort",
        action="store_true",
        help="with --max-drop: write the best INT8 graph even when the budget cannot be met",
    )
    parser.add_argument(
        "--no-cpu-graph",
        action="store_true",
        help="do not write the CPU INT8 graph (ONNX Runtime's CPU layout) beside model.int8.onnx",
    )
    parser.add_argument("--force", action="store_true", help="recalibrate even when calibration.json is up to date")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.set_defaults(func=run)
    return run_parsed(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
