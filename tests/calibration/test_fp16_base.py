"""The INT8 graph computes everything it does not quantize in FP16; --keep-fp32 layers stay FP32.

Checked on the graph itself, with ONNX Runtime (CPU must still run it), and with a real
TensorRT-RTX strongly typed build, whose layer log says what each fused layer reads and
writes.
"""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest

from calibration.calibrate import CalibrationOptions, calibrate
from tests.calibration.conftest import copy_export, top1

F32, F16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


@pytest.fixture(scope="module")
def int8_keep_gemm(digits_fp16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    onnx_path = copy_export(digits_fp16, tmp_path_factory.mktemp("fp16_base"))
    _, report = calibrate(onnx_path, "digits", CalibrationOptions(method="max", limit=64, keep_fp32=("Gemm",)))
    assert report is not None and report["keep_fp32_nodes"] == ["node_linear"]
    return onnx_path.with_name("model.int8.onnx")


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    found = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    found.update({t.name: t.data_type for t in model.graph.initializer})
    for v in list(model.graph.input) + list(model.graph.output):
        found[v.name] = v.type.tensor_type.elem_type
    return found


def test_everything_not_quantized_is_fp16_with_fp32_io(int8_keep_gemm: Path) -> None:
    model = onnx.load(int8_keep_gemm)
    types = _types(model)
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 19
    assert [types[v.name] for v in (*model.graph.input, *model.graph.output)] == [F32, F32]
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            assert types[node.input[1]] == F16, f"{node.name}: scale is not FP16"
        elif node.op_type in ("Conv", "BatchNormalization", "Mul", "Add", "Erf", "Div", "ReduceMean"):
            floats = [types[t] for t in (*node.input, *node.output) if t and types[t] in (F32, F16)]
            assert floats and set(floats) == {F16}, f"{node.name} is not FP16"
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    producer = {o: n for n in model.graph.node for o in n.output}
    assert all(types[t] == F32 for t in (*gemm.input, *gemm.output))  # --keep-fp32
    assert producer[gemm.input[0]].op_type == "Cast" and gemm.input[1] not in producer  # and not quantized
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert all(producer[c.input[0]].op_type == "DequantizeLinear" for c in convs)


def test_onnxruntime_cpu_runs_the_fp16_base(int8_keep_gemm: Path, digits_test) -> None:  # type: ignore[no-untyped-def]
    fp32 = top1(int8_keep_gemm.with_name("model.onnx"), digits_test)
    assert top1(int8_keep_gemm, digits_test) >= fp32 - 1.0


def _rtx_layers(onnx_path: Path, size: int) -> list[dict[str, object]]:
    """Build a strongly typed TensorRT-RTX engine (no GPU needed); parse its `Layers:` log."""
    import tensorrt_rtx as trt

    class Collect(trt.ILogger):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, severity: object, msg: str) -> None:
            self.messages.append(msg)

    logger = Collect()
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path)), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    profile = builder.create_optimization_profile()
    profile.set_shape("images", (1, 3, size, size), (8, 3, size, size), (16, 3, size, size))
    config.add_optimization_profile(profile)
    assert builder.build_serialized_network(network, config) is not None, logger.messages[-5:]
    text = next(m for m in reversed(logger.messages) if m.startswith("Layers:"))
    layers = []
    for line in text.splitlines()[1:]:
        kind = re.search(r"LayerType: (\w+)", line)
        if not kind:
            continue

        def part(a: str, b: str, line: str = line) -> list[str]:
            return re.findall(r"Datatype: (\w+)", line.split(f"{a}: [", 1)[1].split(f"], {b}", 1)[0])

        layers.append(
            {
                "type": kind.group(1),
                "inputs": part("Inputs", "Constants"),
                "constants": part("Constants", "Outputs"),
                "outputs": part("Outputs", "TacticName"),
                "onnx": re.findall(r"ONNX Layer: ([^\]]+)", line),
            }
        )
    return layers


@pytest.mark.rtx
def test_tensorrt_rtx_runs_the_rest_in_fp16(int8_keep_gemm: Path) -> None:
    layers = _rtx_layers(int8_keep_gemm, 32)
    fp32_writers = [
        layer
        for layer in layers
        if "Float" in layer["outputs"]  # type: ignore[operator]
    ]
    for layer in fp32_writers:
        names = " ".join(layer["onnx"])  # type: ignore[arg-type]
        int8_conv = layer["type"] == "correlation" and layer["inputs"] == ["Int8"]
        # TensorRT-RTX's ahead-of-time log reports every INT8 convolution as writing Float,
        # even a lone Q -> DQ -> Conv -> Q (its kernels are chosen on the GPU at load time).
        assert int8_conv or "node_linear" in names or "logits" in names, f"writes FP32: {layer}"
    pointwise = [layer for layer in layers if layer["type"] == "kgen" and any("batch_norm" in n for n in layer["onnx"])]  # type: ignore[attr-defined]
    assert pointwise and all("Half" in layer["constants"] for layer in pointwise)  # type: ignore[operator]
    convs = [layer for layer in layers if layer["type"] == "correlation"]
    assert len(convs) == 9 and all(c["inputs"] == ["Int8"] and c["constants"][0] == "Int8" for c in convs)  # type: ignore[index]
