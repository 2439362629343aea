"""`--input uint8`: uint8 NHWC in, normalisation inside the graph, same logits as float."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from export import fp16
from runtime.app.images.transform import ImageTransform
from runtime.core.golden import load_golden
from runtime.core.manifest import InputSpec
from runtime.core.parity import ParityResult, compare
from runtime.core.preprocess import Preprocessing


@pytest.fixture(scope="module")
def uint8_export(digits_uint8_export: Path) -> Path:
    return digits_uint8_export


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_input_is_uint8_nhwc_with_dynamic_batch_height_width(uint8_export: Path) -> None:
    model = onnx.load(uint8_export / "model.onnx")
    (inp,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, inp.type.tensor_type.elem_type, dims) == (
        "images",
        onnx.TensorProto.UINT8,
        ["batch", "height", "width", 3],
    )
    assert [n.op_type for n in model.graph.node][:5] == ["Cast", "Mul", "Sub", "Div", "Transpose"]
    manifest = json.loads((uint8_export / "model.json").read_text())
    assert manifest["input"] == {"name": "images", "dtype": "uint8", "layout": "NHWC"}
    assert manifest["dynamic_axes"]["images"] == {"0": "batch", "1": "height", "2": "width"}
    session = _session(uint8_export / "model.onnx")
    for shape in ((1, 32, 32, 3), (3, 20, 44, 3)):
        x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        assert session.run(None, {"images": x})[0].shape == (shape[0], 10)


def test_golden_inputs_are_uint8_and_match_pytorch(uint8_export: Path) -> None:
    pairs = load_golden(uint8_export / "golden.npz")
    assert len(pairs) >= 2 and all(x.dtype == np.uint8 and x.shape[-1] == 3 for x, _ in pairs)
    session = _session(uint8_export / "model.onnx")
    for x, ref in pairs:
        assert compare(ref, session.run(None, {"images": x})[0], "fp32")


def test_logits_match_the_float_graph_on_the_same_images(
    uint8_export: Path, digits_export: Path, tmp_path: Path
) -> None:
    from runtime.app.images.datasets import load_digits

    test = load_digits("test")
    rng = np.random.default_rng(1)
    paths = []
    for i in range(6):
        img = test.image(i).convert("RGB").resize((40 + 7 * i, 37), Image.Resampling.NEAREST)
        noisy = np.clip(np.asarray(img, np.int16) + rng.integers(-20, 20, (37, 40 + 7 * i, 3)), 0, 255)
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(noisy.astype(np.uint8)).save(paths[-1])
    cfg = Preprocessing.from_dict(json.loads((digits_export / "model.json").read_text())["preprocessing"])
    as_float = np.stack([ImageTransform(cfg).from_path(p) for p in paths])
    as_uint8 = np.stack([ImageTransform(cfg, InputSpec("uint8")).from_path(p) for p in paths])
    assert as_float.dtype == np.float32 and as_uint8.dtype == np.uint8 and as_uint8.shape == (6, 32, 32, 3)
    float_logits = _session(digits_export / "model.onnx").run(None, {"images": as_float})[0]
    uint8_logits = _session(uint8_export / "model.onnx").run(None, {"images": as_uint8})[0]
    np.testing.assert_allclose(uint8_logits, float_logits, rtol=1e-5, atol=1e-5)


def test_fp16_keeps_the_uint8_input(uint8_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def parity_with_session(model_file: Path, golden_file: Path, precision: str) -> list[ParityResult]:
        # The session itself, until Runner.infer takes uint8 input (the runner's change).
        session = _session(model_file)
        return [compare(ref, session.run(None, {"images": x})[0], precision) for x, ref in load_golden(golden_file)]

    monkeypatch.setattr(fp16, "golden_parity", parity_with_session)
    out = fp16.convert_fp16(uint8_export / "model.onnx", tmp_path / "model.fp16.onnx")
    (inp,) = onnx.load(out).graph.input
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
