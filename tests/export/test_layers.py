"""The layer report parsers, on a real TensorRT-RTX capture and on TensorRT's inspector JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export.layers import LayerInfo, LayerReport, parse_inspector_json, parse_rtx_layers, read_report
from runtime.core.artifacts import layers_path
from runtime.core.errors import UserError

# The `Layers:` message TensorRT-RTX 1.7 logged for the convmixer_digits int8 engine.
CAPTURE = Path(__file__).parent / "data" / "rtx_layers_digits_int8.txt"


def test_rtx_capture_is_read_layer_by_layer() -> None:
    layers = parse_rtx_layers(CAPTURE.read_text())
    assert len(layers) == 22 and layers[0].type == "shape_call" and layers[0].precision is None
    conv = next(layer for layer in layers if layer.name == "node_conv2d_myl0_2")
    assert conv.type == "convolution"  # RTX says "correlation"
    assert conv.inputs == ["int8"] and conv.weights == ["int8", "fp32", "fp32"] and conv.outputs == ["fp32"]
    assert conv.onnx_nodes == ["node_conv2d", "images_DequantizeLinear", "stem.0.weight_DequantizeLinear"]
    assert conv.precision == "int8"
    skip = layers[5]  # a fused kernel reading an int8 skip input beside fp32: computes in fp32
    assert skip.inputs == ["int8", "fp32"] and skip.precision == "fp32"


def test_summary_counts_each_layer_once_by_compute_precision() -> None:
    report = LayerReport(parse_rtx_layers(CAPTURE.read_text()), "capture")
    assert report.summary == {"fp32": 11, "fp16": 0, "int8": 10}  # 9 convolutions + the classifier gemm
    assert sum(report.summary.values()) == len(report.layers) - 1  # the shape call is not counted
    bf16 = LayerInfo("x", "gemm", ["bf16"], [], ["bf16"], [])
    assert LayerReport([bf16], "t").summary == {"fp32": 0, "fp16": 0, "int8": 0, "bf16": 1}


def test_report_round_trips_and_prints(tmp_path: Path) -> None:
    report = LayerReport(parse_rtx_layers(CAPTURE.read_text()), "capture")
    engine = tmp_path / "model.int8.engine"
    assert layers_path(engine) == tmp_path / "model.int8.layers.json"
    layers_path(engine).write_text(json.dumps(report.to_dict()))
    again = read_report(engine)
    assert again.layers == report.layers and again.summary == report.summary
    table = again.table().splitlines()
    assert table[0].split()[:5] == ["layer", "type", "in", "weights", "out"] and len(table) == 2 + 22 + 1
    assert table[-1].startswith("layers by compute precision") and "fp32 11, fp16 0, int8 10" in table[-1]
    with pytest.raises(UserError, match="writes the layer report beside each engine"):
        read_report(tmp_path / "model.fp16.engine")


def test_missing_layer_message_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="no 'Layers:' message"):
        parse_rtx_layers("I/O Tensors:\n")


def test_inspector_json() -> None:
    text = json.dumps(
        {
            "Layers": [
                {
                    "Name": "/stem/Conv + /stem/act",
                    "LayerType": "CaskConvolution",
                    "ParameterType": "Convolution",
                    "Inputs": [
                        {"Name": "q", "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format"}
                    ],
                    "Outputs": [{"Name": "y", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
                    "Weights": {"Type": "Int8", "Count": 4096},
                    "Bias": {"Type": "Float", "Count": 64},
                    "Metadata": "[ONNX Layer: /stem/Conv][ONNX Layer: /stem/act]",
                }
            ],
            "Bindings": ["images", "logits"],
        }
    )
    (layer,) = parse_inspector_json(text)
    assert (layer.type, layer.inputs, layer.weights, layer.outputs) == (
        "convolution",
        ["int8"],
        ["int8", "fp32"],
        ["fp16"],
    )
    assert layer.onnx_nodes == ["/stem/Conv", "/stem/act"] and layer.precision == "int8"
    with pytest.raises(UserError, match="names only"):
        parse_inspector_json(json.dumps({"Layers": ["a", "b"]}))


def test_table_prints_long_layer_types_whole() -> None:
    fused = LayerInfo("__myl_CorrMulAdd_myl0_2", "runtime_fusion", ["fp16"], ["fp16"], ["fp16"], ["node_conv2d"])
    header, _, row, _ = LayerReport([fused], "capture").table().splitlines()
    assert row.split()[1] == "runtime_fusion"


@pytest.mark.parametrize("name", ["model.onnx", "model.fp16.engine.json", "model.json"])
def test_layers_of_anything_but_an_engine_or_its_report_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("{}")
    with pytest.raises(UserError, match=r"expected an engine \(model.<precision>.engine\) or its .layers.json"):
        read_report(tmp_path / name)
