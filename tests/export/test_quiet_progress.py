"""Progress bars only where a person waits at a terminal; lines that name what they measure."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from export.fp16 import convert_fp16
from export.layers import LayerInfo, LayerReport
from tests.calibration.conftest import copy_export
from tests.conftest import run_cli


@pytest.mark.rtx
def test_engine_build_writes_no_bar_escape_codes_into_a_log(digits_export: Path, tmp_path: Path) -> None:
    res = run_cli(
        "export",
        "engine",
        str(digits_export / "model.onnx"),
        "--flavour",
        "tensorrt-rtx",
        "--out",
        str(tmp_path / "m.engine"),
    )
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr and "\x1b[" not in res.stderr, res.stderr[:500]


def test_fp16_parity_lines_say_which_input_shape(
    digits_export: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    with caplog.at_level(logging.INFO, logger="export.fp16"):
        convert_fp16(onnx_path)
    lines = [r.getMessage() for r in caplog.records if "fp16 parity" in r.getMessage()]
    assert len(lines) >= 2
    shapes = [line.rsplit("(input ", 1)[1].rstrip(")") for line in lines]
    assert len(set(shapes)) == len(shapes), lines  # each golden shape, each named


def test_layer_table_keeps_long_fused_names_apart() -> None:
    prefix = "node_conv2d_3 + node_batch_norm_3 + node_gelu_3 + node_add_"
    layers = [LayerInfo(prefix + str(i), "Convolution", ["int8"], ["int8"], ["half"], []) for i in range(12)]
    table = LayerReport(layers, "test").table()
    rows = [line.split("  ")[0] for line in table.splitlines()[2:-1]]
    assert len(rows) == 12 and len(set(rows)) == 12, rows
