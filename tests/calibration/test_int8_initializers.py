"""The INT8 graph carries no initializer that nothing reads: ONNX Runtime would log a
"Removing initializer" line for each one, every time the graph loads."""

from __future__ import annotations

from pathlib import Path

import onnx

from calibration.calibrate import CalibrationOptions, calibrate
from tests.calibration.conftest import copy_export


def test_int8_graph_has_no_unused_initializers(digits_export: Path, tmp_path: Path) -> None:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    calibrate(onnx_path, "digits", CalibrationOptions(method="max", limit=16))
    model = onnx.load(str(onnx_path.with_name("model.int8.onnx")))
    read = {name for node in model.graph.node for name in node.input}
    unused = [t.name for t in model.graph.initializer if t.name not in read]
    assert unused == []
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
