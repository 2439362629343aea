from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from export.fp16 import convert_fp16
from runtime import parity
from runtime.errors import UserError


@pytest.fixture(scope="module")
def fp16_model(digits_export: Path) -> Path:
    return convert_fp16(digits_export / "model.onnx")


def test_fp16_graph_has_fp16_weights_and_fp32_io(fp16_model: Path) -> None:
    model = onnx.load(fp16_model)
    assert fp16_model.name == "model.fp16.onnx"
    f32 = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == f32
    assert model.graph.output[0].type.tensor_type.elem_type == f32
    conv_weights = [t for t in model.graph.initializer if t.name.endswith(".weight")]
    assert conv_weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in conv_weights)


def test_fp16_logits_within_tolerance_of_pytorch(fp16_model: Path, digits_export: Path) -> None:
    from runtime.parity_check import run_parity

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
    with pytest.raises(UserError, match="expected the FP32 model.onnx"):
        convert_fp16(fp16_model)


def test_golden_parity_uses_every_golden_shape(digits_export: Path) -> None:
    golden = np.load(digits_export / "golden.npz")
    assert {"input_0", "input_1", "logits_0", "logits_1"} <= set(golden.files)
