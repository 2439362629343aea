"""The INT8 graph follows TensorRT's Q/DQ rules and keeps the trained model's accuracy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calibration import calibrate as calib_mod
from calibration.calibrate import CalibrationOptions, calibrate
from calibration.qdq import check_tensorrt_rules
from runtime.core.errors import UserError
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def calibrated(digits_int8: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the session's CLI calibration (entropy, --limit 256)."""
    return Path(shutil.copytree(digits_int8, tmp_path_factory.mktemp("calibrated"), dirs_exist_ok=True))


def _graph(path: Path) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    model = onnx.load(path)
    return model, {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_int8_graph_obeys_tensorrt_qdq_rules(calibrated: Path) -> None:
    model, inits = _graph(calibrated / "model.int8.onnx")
    ops = {n.op_type for n in model.graph.node}
    assert "QuantizeLinear" in ops and not ops & {"QLinearConv", "ConvInteger", "QLinearMatMul"}
    check_tensorrt_rules(model)
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zp = inits[node.input[2]]
            assert zp.dtype == np.int8 and not zp.any()
    for node in (n for n in model.graph.node if n.op_type in ("Conv", "Gemm")):
        w_dq = next(n for n in model.graph.node if n.output[0] == node.input[1])
        assert w_dq.op_type == "DequantizeLinear"
        w, scale = inits[w_dq.input[0]], inits[w_dq.input[1]]
        assert w.dtype == np.int8 and scale.shape == (w.shape[0],)  # per output channel
        assert inits[node.input[2]].dtype == np.float16  # bias left in float (the FP16 base), not int32


def test_only_the_residual_input_of_skip_adds_is_quantized(calibrated: Path) -> None:
    model, _ = _graph(calibrated / "model.int8.onnx")
    producer = {o: n for n in model.graph.node for o in n.output}
    skip_adds = [
        n
        for n in model.graph.node
        if n.op_type == "Add"
        and all(i in producer for i in n.input)
        and {producer[i].op_type for i in n.input} == {"BatchNormalization", "DequantizeLinear"}
    ]
    assert len(skip_adds) == 4  # convmixer_digits has 4 blocks
    gelu_adds = [n for n in model.graph.node if n.op_type == "Add" and n not in skip_adds]
    for add in gelu_adds:  # erf(x) + 1 inside GELU stays float
        assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in add.input)


def test_accuracy_targets_on_the_digits_split(calibrated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.app.cli.main import main

    report = json.loads((calibrated / "calibration.json").read_text())
    acc = report["heldout"]["accuracy"]
    assert report["heldout"]["images"] == 359 and report["images_used"] == 256
    assert acc["fp32"]["top1"] >= 0.97
    assert acc["fp32"]["top1"] - acc["fp16"]["top1"] <= 0.003
    assert acc["fp32"]["top1"] - acc["int8"]["top1"] <= 0.010
    assert report["heldout"]["int8_vs_fp32"]["cosine_mean"] > 0.99
    assert report["method"] == "entropy" and len(report["data_fingerprint"]) == 64
    for name in ("model.onnx", "model.fp16.onnx", "model.int8.onnx"):  # in this process: 3 start-ups saved
        assert main(["evaluate", str(calibrated / name), "--data", "digits", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["top1"] >= 0.96


def test_second_run_is_a_no_op_and_new_settings_recalibrate(calibrated: Path) -> None:
    before = (calibrated / "model.int8.onnx").stat().st_mtime_ns
    _, report = calibrate(calibrated / "model.onnx", "digits", CalibrationOptions(limit=256))
    assert report is None and (calibrated / "model.int8.onnx").stat().st_mtime_ns == before
    options = CalibrationOptions(method="max", limit=64, exclude=("depthwise",))
    _, report = calibrate(calibrated / "model.onnx", "digits", options)
    assert report is not None and report["method"] == "max" and report["images_used"] == 64
    model, inits = _graph(calibrated / "model.int8.onnx")
    depthwise = [
        n for n in model.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]
    # --exclude leaves them unquantized and in FP16, weights included
    assert depthwise and all(n.input[1] in inits and inits[n.input[1]].dtype == np.float16 for n in depthwise)
    assert len(report["excluded_nodes"]) == 4


def test_interrupted_calibration_leaves_no_int8_graph(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)

    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(calib_mod, "heldout_report", interrupt)
    with pytest.raises(KeyboardInterrupt):
        # max: the interrupt comes after the ranges, and entropy's would only take longer
        calibrate(tmp_path / "model.onnx", "digits", CalibrationOptions(method="max", limit=32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden.npz", "model.json", "model.onnx"]


def test_rules_checker_rejects_asymmetric_uint8(digits_export: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = [{"images": np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)}]

        def get_next(self) -> dict[str, np.ndarray] | None:
            return self.items.pop() if self.items else None

    out = tmp_path / "bad.onnx"
    quantize_static(
        str(digits_export / "model.onnx"),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QUInt8,
    )
    with pytest.raises(UserError, match="TensorRT's Q/DQ rules"):
        check_tensorrt_rules(onnx.load(out))


def test_cli_errors_are_one_line(tmp_path: Path, digits_export: Path) -> None:
    res = run_cli("calibration", str(digits_export / "model.onnx"), "--data", str(tmp_path / "nope"))
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "no such file or directory" in res.stderr
    res = run_cli("calibration", str(digits_export / "model.onnx"), "--data", "digits", "--exclude", "NoSuchOp")
    assert res.returncode == 2 and "matches no node" in res.stderr
