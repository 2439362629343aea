"""Every command that reads an engine checks its bytes against the sidecar's record:
export layers, export triton and the engine summary refuse an engine that is not the one
its sidecar describes, naming both hashes."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.core.artifacts import layers_path, sidecar_path
from runtime.core.io import sha256_file
from tests.conftest import ROOT, run_cli
from tests.fakes import fake_tensorrt

PROFILE = [[[1, 3, 32, 32], [8, 3, 32, 32], [32, 3, 32, 32]]]


def _engine(build: Path, precision: str, **kw: Any) -> Path:
    engine = fake_tensorrt.write_engine(
        build / f"model.{precision}.engine", PROFILE, build / "model.onnx", precision=precision, **kw
    )
    summary = {"fp32": 0, "fp16": 5, "int8": 9 if precision == "int8" else 0}
    layers_path(engine).write_text(json.dumps({"layers": [], "summary": summary}))
    return engine


@pytest.fixture
def build(digits_export: Path, tmp_path: Path) -> Path:
    out = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "build" / "convmixer_digits")
    _engine(out, "fp16")
    _engine(out, "int8", classes=10)
    return out


def test_export_layers_refuses_an_engine_copied_over_another(build: Path) -> None:
    fp16, int8 = build / "model.fp16.engine", build / "model.int8.engine"
    assert run_cli("export", "layers", str(fp16)).returncode == 0
    recorded = json.loads(sidecar_path(fp16).read_text())["engine_sha256"]
    shutil.copyfile(int8, fp16)
    for given in (fp16, layers_path(fp16)):
        res = run_cli("export", "layers", str(given))
        assert res.returncode == 2 and res.stdout == ""
        assert recorded in res.stderr and sha256_file(int8) in res.stderr
        assert res.stderr.count("\n") == 1, res.stderr


def test_export_triton_refuses_random_bytes_under_an_edited_sidecar(build: Path, tmp_path: Path) -> None:
    engine = build / "model.fp16.engine"
    engine.write_bytes(os.urandom(100))
    sidecar = json.loads(sidecar_path(engine).read_text())
    sidecar["flavour"] = "tensorrt"
    sidecar_path(engine).write_text(json.dumps(sidecar))
    repo = tmp_path / "repo"
    res = run_cli("export", "triton", str(build), "--out", str(repo), "--precision", "fp16", "--format", "engine")
    assert res.returncode == 2, res.stderr
    assert sha256_file(engine) in res.stderr and sidecar["engine_sha256"] in res.stderr
    assert not (repo / "convmixer_digits").exists()


def test_the_engine_summary_refuses_a_swapped_engine(build: Path) -> None:
    shutil.copyfile(build / "model.int8.engine", build / "model.fp16.engine")
    script = ROOT / "scripts" / "engine_summary.py"
    import subprocess

    res = subprocess.run([sys.executable, str(script), str(build)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert sha256_file(build / "model.int8.engine") in res.stderr and "not the one the sidecar describes" in res.stderr


@pytest.mark.rtx
def test_real_rtx_engines_swapped_are_refused_by_every_reader(digits_export: Path, tmp_path: Path) -> None:
    """Two real TensorRT-RTX builds of one graph; the second copied over the first."""
    pytest.importorskip("tensorrt_rtx")
    build = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "build")
    onnx_path = build / "model.onnx"
    rtx = ("--flavour", "tensorrt-rtx")
    assert run_cli("export", "engine", str(onnx_path), *rtx).returncode == 0
    other = tmp_path / "other" / "model.fp32.engine"
    res = run_cli("export", "engine", str(onnx_path), *rtx, "--shapes", "1x3x32x32:2x3x32x32:4x3x32x32", "--out", str(other))
    assert res.returncode == 0, res.stderr
    engine = build / "model.fp32.engine"
    recorded = json.loads(sidecar_path(engine).read_text())["engine_sha256"]
    assert recorded == sha256_file(engine)
    shutil.copyfile(other, engine)
    for command in (("export", "layers", str(engine)), ("runtime", "parity", str(engine))):
        res = run_cli(*command)
        assert res.returncode == 2, (command, res.stderr)
        assert recorded in res.stderr and sha256_file(other) in res.stderr, (command, res.stderr)
