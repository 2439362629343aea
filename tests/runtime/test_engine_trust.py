"""The sidecar covers the engine's own bytes, and host code inside an engine runs only on
an explicit command-line opt-in (checked against the TensorRT test double)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from runtime.core.errors import UserError
from runtime.core.io import sha256_file
from tests.conftest import run_cli
from tests.fakes import fake_tensorrt

PROFILE = [[[1, 3, 32, 32], [4, 3, 32, 32], [4, 3, 32, 32]]]


@pytest.fixture
def model_dir(digits_export: Path, tmp_path: Path) -> Path:
    return fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, fake_tensorrt.FakeCuda]:
    return fake_tensorrt.install(monkeypatch)


def _engine(model_dir: Path, name: str = "model.engine", **kw: Any) -> Path:
    return fake_tensorrt.write_engine(model_dir / name, PROFILE, model_dir / "model.onnx", **kw)


def _images(n: int) -> np.ndarray:
    return np.zeros((n, 3, 32, 32), np.float32)


def test_another_engine_under_the_sidecar_is_refused_naming_both_hashes(model_dir: Path, fake: Any) -> None:
    engine = _engine(model_dir)
    recorded = json.loads((model_dir / "model.engine.json").read_text())["engine_sha256"]
    other = _engine(model_dir, "other.engine", classes=7)  # another build, same source graph
    shutil.copyfile(other, engine)
    with pytest.raises(UserError) as caught:
        runtime.load(engine).activate()
    message = str(caught.value)
    assert recorded in message and sha256_file(other) in message and "not the one the sidecar describes" in message


def test_a_sidecar_without_the_engines_hash_is_refused(model_dir: Path, fake: Any) -> None:
    engine = _engine(model_dir)
    sidecar = model_dir / "model.engine.json"
    data = json.loads(sidecar.read_text())
    del data["engine_sha256"]
    sidecar.write_text(json.dumps(data))
    with pytest.raises(UserError, match="records no sha256 of the engine"):
        runtime.load(engine).activate()


def test_the_bytes_that_are_deserialised_are_the_ones_checked(model_dir: Path, fake: Any) -> None:
    engine = _engine(model_dir)
    with runtime.load(engine) as runner:
        assert runner.infer(_images(1)).shape == (1, 10)
    engine.write_bytes(engine.read_bytes() + b" ")
    with pytest.raises(UserError, match=r"\(\d+ bytes\), but its sidecar model.engine.json records"):
        runtime.load(engine).activate()


def test_host_code_needs_the_opt_in_whatever_the_sidecar_says(model_dir: Path, fake: Any, caplog: Any) -> None:
    engine = _engine(model_dir, host_code=True, version_compatible=True)  # the sidecar says version-compatible
    with pytest.raises(UserError, match="could not deserialise"):
        runtime.load(engine).activate()
    with caplog.at_level(logging.WARNING), runtime.load(engine, options=runtime.TensorRTOptions(allow_engine_host_code=True)) as runner:
        assert runner.infer(_images(1)).shape == (1, 10)
    assert "host code inside the engine is allowed to run (--allow-engine-host-code)" in caplog.text


def test_no_sidecar_does_not_enable_host_code(model_dir: Path, fake: Any) -> None:
    engine = _engine(model_dir, host_code=True, sidecar=False)
    with pytest.raises(UserError, match="could not deserialise"):
        runtime.load(engine, options=runtime.TensorRTOptions(allow_missing_sidecar=True)).activate()
    with runtime.load(engine, options=runtime.TensorRTOptions(allow_missing_sidecar=True, allow_engine_host_code=True)) as runner:
        assert runner.infer(_images(1)).shape == (1, 10)


def test_the_opt_in_is_a_tensorrt_option(model_dir: Path) -> None:
    res = run_cli("runtime", "parity", str(model_dir / "model.onnx"), "--allow-engine-host-code")
    assert res.returncode == 2
    assert res.stderr.strip().endswith("--allow-engine-host-code applies to TensorRT engines, not to ONNX Runtime")
    help_text = run_cli("runtime", "classify", "--help").stdout
    assert "--allow-engine-host-code" in help_text
