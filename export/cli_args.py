"""Command-line options that `python -m export` and `python -m calibration` share, defined once."""

from __future__ import annotations

import argparse


def add_keep_fp32(parser: argparse.ArgumentParser, unquantized: bool = False) -> None:
    """--keep-fp32 PATTERN (repeatable): layers that overflow FP16 stay in FP32, weights included.
    `unquantized`: calibration's wording, where such layers are also left out of INT8."""
    what = "leave matching layers unquantized and in FP32" if unquantized else "keep matching layers in FP32"
    parser.add_argument(
        "--keep-fp32",
        action="append",
        default=[],
        metavar="PATTERN",
        help=f"{what} (FP16 overflow): an op type (Gemm), a node-name glob or 'depthwise'; repeatable "
        "(default: none; a pattern that matches nothing is an error)",
    )
