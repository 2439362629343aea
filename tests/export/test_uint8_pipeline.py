"""A uint8-input model through every step: export, FP16, INT8 calibration (fed uint8 NHWC
crops), and real TensorRT-RTX engines with NHWC profiles. Each step is tested on its own
elsewhere; this is the one place they meet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tensorrt_rtx  # noqa: F401  # a missing install fails this test; it never skips it

from export.layers import read_report
from tests.conftest import run_cli
from tests.fakes.fake_tensorrt import copy_model_dir

pytestmark = pytest.mark.rtx


@pytest.fixture(scope="module")
def uint8_model(digits_uint8_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = copy_model_dir(digits_uint8_export, tmp_path_factory.mktemp("digits_uint8_pipeline"))
    # max: how uint8 crops are fed is what this checks; entropy's KL search only costs time here
    calibrate = ("calibration", str(out / "model.onnx"), "--data", "digits", "--limit", "64", "--method", "max")
    for step in (("export", "fp16", str(out / "model.onnx")), calibrate):
        res = run_cli(*step)
        assert res.returncode == 0, res.stderr
    return out


def test_calibration_of_a_uint8_model_keeps_accuracy(uint8_model: Path) -> None:
    report = json.loads((uint8_model / "calibration.json").read_text())
    accuracy = report["heldout"]["accuracy"]
    assert report["heldout"]["images"] == 359  # the digits test split, fed as uint8 NHWC crops
    assert accuracy["int8"]["top1"] >= accuracy["fp32"]["top1"] - 0.01
    assert accuracy["fp32"]["top1"] > 0.98  # the trained model, not a mis-fed one


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_uint8_engines_build_with_nhwc_profiles(uint8_model: Path, precision: str) -> None:
    res = run_cli("export", "engine", str(uint8_model / f"model.{precision}.onnx"), "--flavour", "tensorrt-rtx")
    assert res.returncode == 0, res.stderr
    engine = uint8_model / f"model.{precision}.engine"
    side = json.loads(engine.with_name(engine.name + ".json").read_text())
    assert side["input_dtype"] == "uint8"
    assert side["profiles"][0]["min"][1:] == [32, 32, 3] and side["profiles"][0]["max"][3] == 3  # NHWC
    summary = read_report(engine).summary
    assert summary[precision] > 0 and (precision == "int8" or summary["int8"] == 0)
