"""export.engine's control flow against the TensorRT test double (tests/fakes).

Only what TensorRT-RTX cannot answer here: the `tensorrt` flavour's own options (timing
cache, DLA), its GPU requirement and its engine-inspector layer report. Real builds, real
parser errors and real profile errors are in test_engine_rtx.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from export.engine_options import EngineOptions
from export.shapes import Profile
from runtime.core.errors import UserError
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
    assert trt.calls["cleared_flags"] == ["TF32"] and not trt.calls["config"].get_flag(trt.BuilderFlag.TF32)
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
    assert side["flavour"] == "tensorrt" and side["built_with_gpu"] is True and side["tf32"] is False
    assert side["target_compute_capabilities"] == ["8.7"] and side["input_dtype"] == "float32"


def test_tf32_is_kept_on_when_asked(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine, default_options

    opts = default_options(model_dir / "model.onnx")
    opts.tf32 = True
    _, meta = build_engine(model_dir / "model.onnx", opts)
    assert trt.calls["cleared_flags"] == [] and trt.calls["config"].get_flag(trt.BuilderFlag.TF32)
    assert meta.tf32 is True


def test_layer_report_from_the_engine_inspector(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorRT with a GPU: the report comes from the inspector JSON (test double only)."""
    fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine
    from export.layers import read_report

    path, _ = build_engine(model_dir / "model.onnx")
    report = read_report(path)
    convs = [n.name for n in onnx.load(model_dir / "model.onnx").graph.node if n.op_type == "Conv"]
    conv_layers = [layer for layer in report.layers if layer.type == "convolution"]
    assert [layer.onnx_nodes for layer in conv_layers] == [[c] for c in convs]
    assert all(layer.inputs == ["fp32"] and layer.weights == ["fp32", "fp32"] for layer in conv_layers)
    assert report.source == "tensorrt engine inspector" and report.summary["fp32"] == len(report.layers)


def test_missing_strongly_typed_flag_is_refused(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch, version="8.6.1")
    trt.NetworkDefinitionCreationFlag = fake_tensorrt._enum("EXPLICIT_BATCH")
    from export.engine import build_engine

    with pytest.raises(UserError, match=r"tensorrt 8\.6\.1 cannot build strongly typed networks"):
        build_engine(model_dir / "model.onnx")
    assert trt.calls["flags"] == [] and not list(model_dir.glob("*.engine*"))


def test_rebuild_writes_engine_before_sidecar(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted rebuild never leaves a new sidecar beside an old engine (or the reverse)."""
    fake_tensorrt.install(monkeypatch)
    import export.trt.save as save
    from export.engine import build_engine

    path, _ = build_engine(model_dir / "model.onnx")
    old_engine = path.read_bytes()
    order: list[str] = []
    real = save.write_json_atomic

    def interrupted(target: Path, obj: object) -> None:
        order.append(Path(target).name)
        raise KeyboardInterrupt  # Ctrl-C just after the engine was renamed into place

    monkeypatch.setattr(save, "write_json_atomic", interrupted)
    trt, _ = fake_tensorrt.install(monkeypatch)
    trt.calls["profiles"].append([[9, 3, 32, 32]] * 3)  # the new engine differs from the old one
    with pytest.raises(KeyboardInterrupt):
        build_engine(model_dir / "model.onnx")
    assert order == ["model.fp32.engine.json"]
    assert not path.exists()  # the new engine is removed as the step stops: an interrupted build leaves none
    assert old_engine  # (and the old one was being replaced, as asked)
    assert not (model_dir / "model.fp32.engine.json").exists()  # ... and no stale sidecar describing the old one
    assert not (model_dir / "model.fp32.layers.json").exists()
    monkeypatch.setattr(save, "write_json_atomic", real)


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
    message = str(err.value)
    assert "\n" not in message and message.startswith("tensorrt's ONNX parser rejected")
    assert message.count("(FancyErf): No importer registered") == sum(n.op_type == "FancyErf" for n in model.graph.node)


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
    before = sorted(model_dir.iterdir())
    # No export work happens first (it takes about a second): a hang or a slow path fails on the timeout.
    res = run_cli("export", "engine", str(model_dir / "model.onnx"), "--flavour", "tensorrt", timeout=60)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "tensorrt is not installed" in res.stderr and "pip install -e '.[tensorrt]'" in res.stderr
    assert "--system-site-packages" in res.stderr
    assert sorted(model_dir.iterdir()) == before


def test_no_cuda_device_is_named(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tensorrt.install(monkeypatch)
    import runtime.core.backends.cuda as cb

    def no_device() -> object:
        raise UserError("no CUDA device found")

    monkeypatch.setattr(cb, "default_cuda", no_device)
    import export.engine as eng

    with pytest.raises(UserError, match="TensorRT is installed but no usable CUDA device: no CUDA device found"):
        eng.build_engine(model_dir / "model.onnx")


def test_engine_step_never_imports_torch() -> None:
    code = "import sys, export.engine, export.engine_options, export.shapes, export.layers, export.__main__; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_print_trtexec_works_without_tensorrt(model_dir: Path) -> None:
    res = run_cli("export", "engine", str(model_dir / "model.onnx"), "--print-trtexec", "--flavour", "tensorrt")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("trtexec --onnx=") and "--maxShapes=images:64x3x32x32" in res.stdout


def test_progress_monitor_tracks_nested_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tensorrt.install(monkeypatch)
    from export.trt.progress import progress_monitor_class

    cls = progress_monitor_class("tensorrt")
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
