from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from export.fp16 import convert_fp16
from runtime.core import parity
from runtime.core.errors import UserError


@pytest.fixture(scope="module")
def fp16_model(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.fp16.onnx beside a copy of the export (the session's export is read only)."""
    out = tmp_path_factory.mktemp("fp16")
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, out / name)
    return convert_fp16(out / "model.onnx")


def test_fp16_graph_has_fp16_weights_and_fp32_io(fp16_model: Path) -> None:
    model = onnx.load(fp16_model)
    assert fp16_model.name == "model.fp16.onnx"
    f32 = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == f32
    assert model.graph.output[0].type.tensor_type.elem_type == f32
    conv_weights = [t for t in model.graph.initializer if t.name.endswith(".weight")]
    assert conv_weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in conv_weights)


def test_fp16_logits_within_tolerance_of_pytorch(fp16_model: Path, digits_export: Path) -> None:
    from runtime.core.golden import run_parity

    result = run_parity(fp16_model)
    assert result, result.summary()
    assert 0 < result.max_abs < 0.1  # FP16 really changed the numbers, within tolerance


def test_fp16_past_tolerance_fails_loudly_and_writes_nothing(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)
    monkeypatch.setitem(parity.TOLERANCES, "fp16", parity.Tolerance(max_abs_rel=1e-9, min_cosine=1.0, min_top1=1.0))
    with pytest.raises(UserError, match="FP16 graph misses the fp16 tolerance"):
        convert_fp16(tmp_path / "model.onnx")
    assert not (tmp_path / "model.fp16.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_fp16_refuses_a_precision_specific_input(fp16_model: Path) -> None:
    with pytest.raises(UserError, match="takes the FP32 model.onnx"):
        convert_fp16(fp16_model)


def test_golden_parity_uses_every_golden_shape(digits_export: Path) -> None:
    golden = np.load(digits_export / "golden.npz")
    assert {"input_0", "input_1", "logits_0", "logits_1"} <= set(golden.files)


def test_keep_fp32_leaves_matching_layers_in_fp32(digits_export: Path, tmp_path: Path) -> None:
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)
    out = convert_fp16(tmp_path / "model.onnx", keep_fp32=["Gemm", "depthwise"])
    model = onnx.load(out)
    f32, f16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    inits = {t.name: t.data_type for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    depthwise = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(depthwise) == 4
    for node in [n for n in model.graph.node if n.op_type == "Gemm"] + depthwise:
        assert inits[node.input[1]] == f32, node.name
    pointwise = [n for n in model.graph.node if n.op_type == "Conv" and n not in depthwise]
    assert pointwise and all(inits[n.input[1]] == f16 for n in pointwise)
    # The Gemm writes the graph output: it must still be declared float32.
    assert model.graph.output[0].type.tensor_type.elem_type == f32


def test_keep_fp32_pattern_matching_nothing_is_one_line_exit_2(fp16_model: Path) -> None:
    from tests.conftest import run_cli

    res = run_cli("export", "fp16", str(fp16_model.with_name("model.onnx")), "--keep-fp32", "NoSuchOp")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "--keep-fp32 'NoSuchOp' matches no node" in res.stderr


def test_out_of_range_weights_are_one_counted_line_not_a_warning_block(caplog: pytest.LogCaptureFixture) -> None:
    """onnxconverter-common warns once per value it clamps to FP16's range; the FP16 step says
    it once, with the count, and lets no 'float32 ... truncated' UserWarning through."""
    import warnings

    from onnx import TensorProto, helper, numpy_helper

    from export.graph_edit import to_float16

    weights = [numpy_helper.from_array(np.array([1e-9, 2.0], np.float32), f"w{i}") for i in range(3)]
    nodes = [helper.make_node("Mul", ["x" if i == 0 else f"y{i - 1}", f"w{i}"], [f"y{i}"]) for i in range(3)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [2])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with warnings.catch_warnings(record=True) as caught, caplog.at_level("INFO"):
        warnings.simplefilter("always")
        to_float16(model, [])
    assert not [w for w in caught if "truncated" in str(w.message)]
    lines = [r.getMessage() for r in caplog.records if "clamped" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("FP16: 3 weight value(s) outside FP16's range")
