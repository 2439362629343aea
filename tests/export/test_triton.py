"""`python -m export triton`: config.pbtxt checked against Triton's own schema.

The config is parsed strictly (unknown fields and bad enum values fail) into
tritonclient's ModelConfig message. Engines need no GPU to be written into a
repository: a stand-in engine file with a real sidecar is enough.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from export.triton import write_repository
from runtime.core.artifacts import sidecar_path
from runtime.core.atomic import write_json_atomic
from runtime.core.engine_meta import EngineMeta
from runtime.core.errors import UserError
from tests.conftest import run_cli


def parse_config(folder: Path) -> mc.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(), mc.ModelConfig())


@pytest.fixture()
def build(digits_export: Path, tmp_path: Path) -> Path:
    """A private copy of the digits export (FP32 only: other tests add to the shared one)."""
    out = tmp_path / "build" / "convmixer_digits"
    out.mkdir(parents=True)
    for name in ("model.onnx", "model.json"):
        shutil.copyfile(digits_export / name, out / name)
    return out


def add_engine(build: Path, precision: str, profiles: list[dict[str, list[int]]], **fields: object) -> Path:
    engine = build / f"model.{precision}.engine"
    plan = b"stand-in plan: Triton's server would deserialise it, not this test"
    engine.write_bytes(plan)
    meta = EngineMeta(
        engine_sha256=hashlib.sha256(plan).hexdigest(),
        engine_size=len(plan),
        library_version="10.13.0.35",
        gpu_name="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        precision=precision,
        profiles=profiles,
        source_onnx=f"model.{precision}.onnx",
        source_onnx_sha256="0" * 64,
        build_seconds=1.0,
        **fields,  # type: ignore[arg-type]
    )
    write_json_atomic(sidecar_path(engine), meta.to_dict())
    return engine


def test_onnx_repository_matches_the_graph(build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    res = run_cli("export", "triton", str(build), "--out", str(repo), "--max-batch", "8")
    assert res.returncode == 0, res.stderr
    assert f"tritonserver --model-repository {repo}" in res.stdout
    folder = repo / "convmixer_digits"
    cfg = parse_config(folder)
    assert cfg.name == "convmixer_digits" and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 8
    (inp,) = cfg.input
    assert (inp.name, inp.data_type, list(inp.dims)) == ("images", mc.TYPE_FP32, [3, -1, -1])
    (out,) = cfg.output
    assert (out.name, out.data_type, list(out.dims), out.label_filename) == ("logits", mc.TYPE_FP32, [10], "labels.txt")
    assert list(cfg.dynamic_batching.preferred_batch_size) == [4, 8]
    assert cfg.instance_group[0].count == 1 and cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_AUTO
    assert (folder / "labels.txt").read_text().splitlines() == [str(i) for i in range(10)]
    assert (folder / "1" / "model.onnx").read_bytes() == (build / "model.onnx").read_bytes()
    assert sorted(p.name for p in repo.parent.iterdir() if p.name.startswith(".")) == []  # no temp folders left


def test_engine_repository_takes_the_profile(build: Path, tmp_path: Path) -> None:
    add_engine(
        build,
        "fp16",
        [{"min": [1, 3, 32, 32], "opt": [8, 3, 32, 32], "max": [16, 3, 64, 64]}],
    )
    folder = write_repository(build, tmp_path / "repo", "fp16", name="digits_fp16", instances=2)
    cfg = parse_config(folder)
    assert cfg.platform == "tensorrt_plan" and cfg.max_batch_size == 16
    assert list(cfg.input[0].dims) == [3, -1, -1] and cfg.input[0].data_type == mc.TYPE_FP32
    assert list(cfg.dynamic_batching.preferred_batch_size) == [8, 16]
    assert cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU and cfg.instance_group[0].count == 2
    assert (folder / "1" / "model.plan").read_bytes() == (build / "model.fp16.engine").read_bytes()


def test_uint8_engine_with_a_static_profile(build: Path, tmp_path: Path) -> None:
    add_engine(
        build, "int8", [{"min": [1, 32, 32, 3], "opt": [4, 32, 32, 3], "max": [4, 32, 32, 3]}], input_dtype="uint8"
    )
    cfg = parse_config(write_repository(build, tmp_path / "repo", "int8"))
    inp = cfg.input[0]
    assert (inp.data_type, inp.format, list(inp.dims)) == (mc.TYPE_UINT8, mc.ModelInput.FORMAT_NHWC, [32, 32, 3])
    assert cfg.max_batch_size == 4 and list(cfg.dynamic_batching.preferred_batch_size) == [4]


def test_rewrite_replaces_the_model_whole_and_a_failure_keeps_the_old_one(
    build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    write_repository(build, repo, max_batch=8)
    write_repository(build, repo, max_batch=4)
    assert parse_config(repo / "convmixer_digits").max_batch_size == 4

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        write_repository(build, repo, max_batch=2)
    assert parse_config(repo / "convmixer_digits").max_batch_size == 4
    assert (repo / "convmixer_digits" / "1" / "model.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_artifact_names_what_to_build(build: Path, tmp_path: Path) -> None:
    res = run_cli("export", "triton", str(build), "--out", str(tmp_path / "repo"), "--precision", "fp16")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "no model.fp16.onnx or model.fp16.engine" in res.stderr and "python -m export fp16" in res.stderr
    res = run_cli("export", "triton", str(build), "--out", str(tmp_path / "repo"), "--format", "engine")
    assert res.returncode == 2 and "python -m export engine" in res.stderr
    assert not (tmp_path / "repo").exists()


def test_engines_triton_cannot_run_are_refused(build: Path, tmp_path: Path) -> None:
    profile = [{"min": [1, 3, 32, 32], "opt": [8, 3, 32, 32], "max": [16, 3, 32, 32]}]
    add_engine(build, "fp16", profile, flavour="tensorrt-rtx")
    with pytest.raises(UserError, match="tensorrt_plan backend runs TensorRT engines only"):
        write_repository(build, tmp_path / "repo", "fp16", fmt="engine")
    add_engine(build, "fp16", profile)
    with pytest.raises(UserError, match="profiles allow 1..16"):
        write_repository(build, tmp_path / "repo", "fp16", max_batch=64)


def test_a_file_for_the_build_folder_is_named_as_such(build: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="expected the build/<model>/ folder, got a file"):
        write_repository(build / "model.onnx", tmp_path / "repo")


def test_default_format_passes_over_an_rtx_engine_for_the_onnx_graph(
    build: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    profile = [{"min": [1, 3, 32, 32], "opt": [8, 3, 32, 32], "max": [16, 3, 32, 32]}]
    add_engine(build, "fp32", profile, flavour="tensorrt-rtx")
    with caplog.at_level("INFO", logger="export.triton"):
        target = write_repository(build, tmp_path / "repo")
    assert parse_config(target).platform == "onnxruntime_onnx" and (target / "1" / "model.onnx").is_file()
    assert "built with tensorrt-rtx" in caplog.text and "tensorrt_plan backend runs TensorRT engines" in caplog.text
    (build / "model.onnx").unlink()
    with pytest.raises(UserError, match="no model.onnx to serve instead"):
        write_repository(build, tmp_path / "repo2")
