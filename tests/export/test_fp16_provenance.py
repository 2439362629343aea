"""The FP16 graph's hash is recorded by `export fp16` and checked by `runtime parity`, as the
FP32 and INT8 graphs' are; a graph whose output is not 'logits' is refused by the engine
step as by the others, and errors name the user's file, never a temporary one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from runtime.core.io import sha256_file
from tests.calibration.conftest import copy_export
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def fp16_export(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fp16") / "build"
    copy_export(digits_export, folder)
    res = run_cli("export", "fp16", str(folder / "model.onnx"))
    assert res.returncode == 0, res.stderr
    return folder


@pytest.fixture()
def build(fp16_export: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fp16_export, tmp_path / "build"))


def test_export_fp16_records_the_graph_and_its_source(build: Path) -> None:
    record = json.loads((build / "model.fp16.onnx.json").read_text())
    assert record == {
        "fp16_onnx_sha256": sha256_file(build / "model.fp16.onnx"),
        "source_onnx_sha256": sha256_file(build / "model.onnx"),
    }
    res = run_cli("runtime", "parity", str(build / "model.fp16.onnx"))
    assert res.returncode == 0, res.stderr
    assert "provenance not checked" not in res.stdout + res.stderr


def test_parity_refuses_another_fp16_graph_naming_both_hashes(build: Path) -> None:
    graph = build / "model.fp16.onnx"
    recorded = sha256_file(graph)
    model = onnx.load(str(graph))
    model.doc_string = "another FP16 graph"
    onnx.save(model, str(graph))
    res = run_cli("runtime", "parity", str(graph))
    assert res.returncode == 2, res.stdout + res.stderr
    assert recorded in res.stderr and sha256_file(graph) in res.stderr and "FP16 graph" in res.stderr


def test_parity_refuses_an_fp16_graph_of_another_model_onnx(build: Path) -> None:
    manifest = json.loads((build / "model.json").read_text())
    manifest["onnx_sha256"] = "1" * 64  # model.onnx re-exported since the FP16 graph was made
    (build / "model.json").write_text(json.dumps(manifest))
    res = run_cli("runtime", "parity", str(build / "model.fp16.onnx"))
    assert res.returncode == 2
    assert "says it came from a model.onnx of sha256" in res.stderr and "1" * 64 in res.stderr


def _rename_output(onnx_path: Path, new: str) -> None:
    model = onnx.load(str(onnx_path))
    old = model.graph.output[0].name
    model.graph.output[0].name = new
    for node in model.graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
    onnx.save(model, str(onnx_path))


@pytest.mark.parametrize(
    "command", [("export", "engine"), ("export", "fp16")], ids=["export engine", "export fp16"]
)
def test_a_graph_without_logits_is_refused_naming_the_users_file(
    digits_export: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    _rename_output(onnx_path, "scores")
    res = run_cli(*command, str(onnx_path))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"error: {onnx_path}: outputs ['scores'] | expected an output named 'logits'"
    assert ".tmp" not in res.stderr
    assert sorted(p.name for p in onnx_path.parent.iterdir()) == ["golden.npz", "model.json", "model.onnx"]
