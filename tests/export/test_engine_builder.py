"""export.engine's control flow against the TensorRT test double (tests/fakes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from export.profiles import EngineOptions, Profile
from runtime.errors import UserError
from tests.conftest import ROOT, run_cli
from tests.fakes import fake_tensorrt


@pytest.fixture
def model_dir(digits_export: Path, tmp_path: Path) -> Path:
    return fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")


def test_builds_strongly_typed_with_profiles_and_sidecar(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine

    opts = EngineOptions(
        profiles=[Profile.parse("1x3x32x32:8x3x32x32:16x3x32x32"), Profile.parse("1x3x64x64:2x3x64x64:4x3x64x64")],
        workspace_mib=256,
    )
    path, meta = build_engine(model_dir / "model.onnx", opts)
    assert path == model_dir / "model.fp32.engine" and path.is_file()
    assert trt.calls["flags"] == [1 << 1]  # STRONGLY_TYPED, nothing else
    assert not {"FP16", "INT8"} & set(trt.calls["builder_flags"])  # precision comes from the graph
    assert trt.calls["profiles"] == [
        [[1, 3, 32, 32], [8, 3, 32, 32], [16, 3, 32, 32]],
        [[1, 3, 64, 64], [2, 3, 64, 64], [4, 3, 64, 64]],
    ]
    assert trt.calls["config"].pools == {"WORKSPACE": 256 * 2**20}
    side = json.loads((model_dir / "model.fp32.engine.json").read_text())
    assert side["library_version"] == "10.13.0.35" and side["compute_capability"] == "8.7"
    assert side["gpu_name"] == "Fake GPU" and side["precision"] == "fp32" and side["source_onnx"] == "model.onnx"
    assert len(side["profiles"]) == 2 and side["build_seconds"] >= 0 and len(side["source_onnx_sha256"]) == 64
    assert meta.options["workspace_mib"] == 256


def test_timing_cache_is_loaded_and_saved(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine, default_options

    cache = model_dir / "timing.cache"
    opts = default_options(model_dir / "model.onnx")
    opts.timing_cache = cache
    build_engine(model_dir / "model.onnx", opts)
    assert trt.calls["timing_cache_in"] == b"" and cache.read_bytes().startswith(b"timing-cache:")
    build_engine(model_dir / "model.onnx", opts)
    assert trt.calls["timing_cache_in"].startswith(b"timing-cache:")


def test_parser_errors_are_reported_per_node(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine

    model = onnx.load(model_dir / "model.onnx")
    for node in model.graph.node:
        if node.op_type == "Erf":
            node.op_type = "FancyErf"
    onnx.save(model, model_dir / "model.onnx")
    with pytest.raises(UserError) as err:
        build_engine(model_dir / "model.onnx")
    lines = str(err.value).splitlines()
    assert lines[0].startswith("TensorRT's ONNX parser rejected")
    assert len(lines) == 1 + sum(n.op_type == "FancyErf" for n in model.graph.node)
    assert "(FancyErf): No importer registered" in lines[1]


def test_failed_build_leaves_nothing(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch)
    trt.fail_build = True
    from export.engine import build_engine

    with pytest.raises(UserError, match="failed to build"):
        build_engine(model_dir / "model.onnx")
    assert not list(model_dir.glob("*.engine*"))


def test_dla_needs_a_device_with_dla(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine

    (model_dir / "model.fp16.onnx").write_bytes((model_dir / "model.onnx").read_bytes())
    opts = EngineOptions(profiles=[Profile.parse("4x3x32x32:4x3x32x32:4x3x32x32")], dla_core=0)
    with pytest.raises(UserError, match="has no DLA"):
        build_engine(model_dir / "model.fp16.onnx", opts)
    trt, _ = fake_tensorrt.install(monkeypatch, dla_cores=2)
    build_engine(model_dir / "model.fp16.onnx", opts)
    assert trt.calls["config"].DLA_core == 0 and "GPU_FALLBACK" in trt.calls["builder_flags"]


def test_missing_tensorrt_is_one_clear_line_fast(model_dir: Path) -> None:
    start = time.perf_counter()
    res = run_cli("export", "engine", str(model_dir / "model.onnx"))
    elapsed = time.perf_counter() - start
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "tensorrt is not installed" in res.stderr and "pip install -e '.[tensorrt]'" in res.stderr
    assert "--system-site-packages" in res.stderr
    assert elapsed < 10  # no export work happens first (typically ~1 s)


def test_no_cuda_device_is_named(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tensorrt.install(monkeypatch)
    import runtime.backends.cuda as cb

    def no_device() -> object:
        raise UserError("no CUDA device found")

    monkeypatch.setattr(cb, "default_cuda", no_device)
    import export.engine as eng

    monkeypatch.setattr(eng, "default_cuda", no_device)
    with pytest.raises(UserError, match="TensorRT is installed but no usable CUDA device: no CUDA device found"):
        eng.build_engine(model_dir / "model.onnx")


def test_engine_step_never_imports_torch() -> None:
    code = "import sys, export.engine, export.profiles, export.__main__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_print_trtexec_works_without_tensorrt(model_dir: Path) -> None:
    res = run_cli("export", "engine", str(model_dir / "model.onnx"), "--print-trtexec")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("trtexec --onnx=") and "--maxShapes=images:64x3x32x32" in res.stdout


def test_progress_monitor_tracks_nested_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tensorrt.install(monkeypatch)
    from export.engine import _progress_monitor_class

    cls = _progress_monitor_class()
    assert cls is not None
    monitor = cls()
    monitor.phase_start("Building", "", 2)
    monitor.phase_start("Tactics", "Building", 3)
    monitor.phase_start("Inner", "Tactics", 1)  # too deep for a bar
    assert all(monitor.step_complete(phase, 0) for phase in ("Building", "Tactics", "Inner"))
    assert set(monitor._bars) == {"Building", "Tactics"}
    for phase in ("Inner", "Tactics", "Building"):
        monitor.phase_finish(phase)
    assert monitor._bars == {} and monitor._top == set()
