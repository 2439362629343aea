"""Real TensorRT: build, run and check an engine (`make test-gpu` on a machine with TensorRT)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.engine_options import EngineOptions
from export.fp16 import convert_fp16
from export.shapes import Profile
from runtime.core.errors import UserError
from tests.fakes.fake_tensorrt import copy_model_dir

pytestmark = pytest.mark.trt


@pytest.fixture(scope="module")
def engine(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.engine import build_engine

    d = copy_model_dir(digits_export, tmp_path_factory.mktemp("trt"))
    convert_fp16(d / "model.onnx")
    opts = EngineOptions(
        profiles=[Profile.parse("1x3x32x32:8x3x32x32:16x3x32x32"), Profile.parse("1x3x16x16:8x3x22x36:8x3x48x48")],
        timing_cache=d / "timing.cache",
    )
    path, _ = build_engine(d / "model.fp16.onnx", opts)
    return path


def test_sidecar_describes_the_build(engine: Path) -> None:
    import tensorrt as trt

    side = json.loads(engine.with_name(engine.name + ".json").read_text())
    assert side["library_version"] == trt.__version__ and side["precision"] == "fp16"
    assert len(side["profiles"]) == 2 and side["build_seconds"] > 0
    assert (engine.parent / "timing.cache").stat().st_size > 0


def test_engine_passes_fp16_parity(engine: Path) -> None:
    from runtime.core.golden import run_parity

    result = run_parity(engine)
    assert result, result.summary()


def test_engine_classifies_the_digits(engine: Path) -> None:
    import runtime
    from runtime.app.evaluate import evaluate, labelled_batches
    from runtime.core.manifest import load_manifest

    manifest = load_manifest(engine)
    with runtime.load(engine) as runner:
        acc = evaluate(runner, labelled_batches("digits", manifest.preprocessing, manifest.labels, 40))
    assert acc.top1 >= 0.97  # batches of 40 are split to the profile's 16


def test_shape_outside_profile_is_a_clear_error(engine: Path) -> None:
    import runtime

    with runtime.load(engine) as runner, pytest.raises(UserError, match="engine profile allows"):
        runner.infer(np.zeros((1, 3, 64, 64), np.float32))
