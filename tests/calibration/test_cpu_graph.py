"""The CPU INT8 graph: its layout, exactness of the BatchNorm rewrite, accuracy, and layers left in float."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from calibration.cpu_graph import cpu_tensors, prepare, rewrite_batchnorm, stem_nodes
from calibration.cpu_quantize import check_cpu_layout, write_cpu_int8
from calibration.data import open_source
from calibration.qdq import skip_adds
from calibration.ranges import CalibratorSettings, CpuTargets, collect_ranges
from runtime.core.artifacts import cpu_int8_for
from runtime.core.errors import UserError
from runtime.core.io import sha256_file
from runtime.core.manifest import load_manifest
from tests.calibration.conftest import top1
from tests.conftest import run_cli


def _fused(path: Path, out: Path) -> collections.Counter[str]:
    """Op counts of the graph ONNX Runtime actually runs (its fusions applied)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(out)).graph.node)


def test_layout_uint8_activations_int8_per_channel_weights_outputs_quantized(digits_int8: Path, tmp_path: Path) -> None:
    model = onnx.load(str(cpu_int8_for(digits_int8 / "model.onnx")))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    ops = collections.Counter(n.op_type for n in model.graph.node)
    assert ops["BatchNormalization"] == 0 and ops["Conv"] == 9 + 9  # each BatchNorm is a depthwise 1x1 Conv
    stem = stem_nodes(model)
    stem_convs = [n for n in model.graph.node if n.name in stem and n.op_type == "Conv"]
    assert len(stem_convs) == 2 and all(n.input[1] in inits for n in stem_convs)  # patch conv and BatchNorm: float
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            assert inits[node.input[2]].dtype == np.uint8
        if node.op_type == "Conv" and node.name not in stem:
            w = producer[node.input[1]]
            assert w.op_type == "DequantizeLinear" and inits[w.input[0]].dtype == np.int8
            assert inits[w.input[1]].size == inits[w.input[0]].shape[0] > 1  # per output channel
            assert {c.op_type for c in model.graph.node if node.output[0] in c.input} == {"QuantizeLinear"}
    assert check_cpu_layout(model)["int8_convs"] == 16
    # What ONNX Runtime runs: every convolution and BatchNorm but the stem's, every skip-add and
    # the Mul/Add of each GELU but the stem's in integer; Div and Erf in float.
    fused = _fused(cpu_int8_for(digits_int8 / "model.onnx"), tmp_path / "fused.onnx")
    assert fused["QLinearConv"] == 16 and fused["Conv"] == 2
    assert fused["QLinearAdd"] == 4 + 8 and fused["QLinearMul"] == 2 * 8 and fused["Add"] == 1


def test_layout_check_refuses_a_tensorrt_graph(digits_int8: Path) -> None:
    with pytest.raises(UserError, match="uint8|BatchNormalization"):
        check_cpu_layout(onnx.load(str(digits_int8 / "model.int8.onnx")))


def test_calibration_json_records_both_graphs(digits_int8: Path) -> None:
    report = json.loads((digits_int8 / "calibration.json").read_text())
    assert report["int8_onnx_sha256"] == sha256_file(digits_int8 / "model.int8.onnx")
    assert report["cpu_int8_onnx_sha256"] == sha256_file(cpu_int8_for(digits_int8 / "model.onnx"))
    assert report["cpu_qdq_scheme"].startswith("ort-cpu-") and report["cpu_heldout"]["images"] == 359


def test_accuracy_within_half_a_point_of_fp32(digits_int8: Path, digits_test: tuple[np.ndarray, np.ndarray]) -> None:
    fp32 = top1(digits_int8 / "model.onnx", digits_test)
    assert fp32 >= 97
    assert abs(top1(cpu_int8_for(digits_int8 / "model.onnx"), digits_test) - fp32) <= 0.5


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def test_batchnorm_rewrite_is_exact_on_the_gelu_model(digits_int8: Path) -> None:
    model = onnx.load(str(digits_int8 / "model.onnx"))
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32), dtype=np.float32)
    before = _run(model, x)
    assert rewrite_batchnorm(model) == {"depthwise": 9, "folded_into_conv": 0}
    assert not [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-4, atol=1e-4)


def _conv_relu_bn(gamma: np.ndarray) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    c = len(gamma)
    inits = [
        numpy_helper.from_array(rng.standard_normal((c, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "b"),
        numpy_helper.from_array(gamma.astype(np.float32), "gamma"),
        numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "beta"),
        numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "mean"),
        numpy_helper.from_array(rng.random(c).astype(np.float32) + 0.5, "var"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("BatchNormalization", ["r", "gamma", "beta", "mean", "var"], ["y"], name="bn"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 8, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("fold", [False, True], ids=["depthwise", "fold-relu"])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive-scales", "one-negative-scale"])
def test_batchnorm_after_relu_is_rewritten_exactly(fold: bool, sign: float, monkeypatch: pytest.MonkeyPatch) -> None:
    import calibration.cpu_graph

    monkeypatch.setattr(calibration.cpu_graph, "FOLD_RELU", fold)
    model = _conv_relu_bn(np.array([0.5, 2.0 * sign, 1.5, 0.1]))
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8), dtype=np.float32)
    before = _run(model, x)
    folds = fold and sign > 0  # relu(a x) = a relu(x) only for a > 0
    assert rewrite_batchnorm(model) == {"depthwise": int(not folds), "folded_into_conv": int(folds)}
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu", "Add" if folds else "Conv"]
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-5)


def test_a_layer_left_in_float_really_runs_in_float(digits_int8: Path, tmp_path: Path) -> None:
    # nodes_to_exclude alone leaves the layer between its neighbours' DQ and Q, which ONNX
    # Runtime would fuse into an integer kernel anyway.
    onnx_path = digits_int8 / "model.onnx"
    source = open_source("digits", load_manifest(onnx_path).preprocessing, None, 16)
    prepared = prepare(onnx_path, tmp_path)
    cpu = CpuTargets(prepared, frozenset(cpu_tensors(onnx.load(str(prepared)))), tmp_path / "cpu.json")
    collect_ranges(onnx_path, source, CalibratorSettings("max"), tmp_path, tmp_path / "trt.json", cpu)
    model = onnx.load(str(prepared))
    stem = stem_nodes(model)
    skip_add = skip_adds(model)[0]
    conv = next(n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in stem)
    write_cpu_int8(prepared, tmp_path / "out.onnx", cpu.cache, [conv, skip_add])
    fused = _fused(tmp_path / "out.onnx", tmp_path / "fused.onnx")
    # The skip-add's branch input is a BatchNorm's output that nothing else reads: it stays float too.
    assert fused["QLinearConv"] == 16 - 2 and fused["Conv"] == 2 + 2
    assert fused["QLinearAdd"] == 12 - 1 and fused["Add"] == 1 + 1  # the stem GELU's add and this skip-add
    written = onnx.load(str(tmp_path / "out.onnx"))
    producer = {o: n for n in written.graph.node for o in n.output}
    for node in (n for n in written.graph.node if n.name in (conv, skip_add)):
        assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in node.input)


def test_no_cpu_graph_skips_it(digits_int8: Path, tmp_path: Path) -> None:
    for name in ("model.onnx", "model.json", "golden.npz"):
        (tmp_path / name).write_bytes((digits_int8 / name).read_bytes())
    res = run_cli(
        "calibration", str(tmp_path / "model.onnx"), "--data", "digits", "--limit", "32", "--method", "max",
        "--no-cpu-graph",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "model.int8.onnx").is_file() and not cpu_int8_for(tmp_path / "model.onnx").exists()
    report = json.loads((tmp_path / "calibration.json").read_text())
    assert report["cpu_qdq_scheme"] is None and "cpu_int8_onnx_sha256" not in report
