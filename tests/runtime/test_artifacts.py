"""runtime.core.artifacts: the names of build/<model>/'s files, and that nothing else spells them."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from runtime.core import artifacts
from runtime.core.artifacts import (
    FP16,
    FP32,
    INT8,
    ONNX_NAME,
    PRECISIONS,
    engine_name,
    engine_path_for,
    layers_path,
    onnx_for_precision,
    parity_path,
    precision_from_name,
    precision_of,
    sidecar_path,
)
from runtime.core.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("convmixer", "export", "calibration", "runtime", "scripts", "benchmarks")


@pytest.mark.parametrize(
    ("name", "precision"),
    [
        ("model.onnx", FP32),
        ("model.fp16.onnx", FP16),
        ("model.int8.onnx", INT8),
        ("model.fp32.engine", FP32),
        ("model.fp16.engine", FP16),
        ("model.int8.engine", INT8),
        ("model.int8.engine.json", INT8),
        ("model.fp16.layers.json", FP16),
        ("model.int8.parity.json", INT8),
        ("model.fp16.onnx-parity.json", FP16),
        ("foo.int8.onnx", INT8),
        ("build\\x\\model.fp16.onnx", FP16),
    ],
)
def test_precision_of_each_artifact_kind_follows_its_name(name: str, precision: str) -> None:
    assert precision_from_name(name) == precision
    assert precision_of(Path("nowhere") / name) == precision  # no sidecar beside it: the name decides


def test_an_engines_sidecar_outranks_its_name(tmp_path: Path) -> None:
    engine = tmp_path / "renamed.engine"
    engine.write_bytes(b"")
    sidecar_path(engine).write_text(json.dumps({"precision": INT8}))
    assert precision_of(engine) == INT8
    sidecar_path(engine).write_text(json.dumps({"precision": "fp8"}))
    with pytest.raises(UserError, match="precision 'fp8' | expected one of fp32, fp16, int8"):
        precision_of(engine)
    sidecar_path(engine).write_text(json.dumps(["not", "a", "sidecar"]))
    with pytest.raises(UserError, match="not an engine sidecar"):
        precision_of(engine)


def test_onnx_names_by_precision_keep_the_stem() -> None:
    assert onnx_for_precision(Path("b/model.onnx"), FP32) == Path("b/model.onnx")
    assert onnx_for_precision(Path("b/model.onnx"), FP16) == Path("b/model.fp16.onnx")
    assert onnx_for_precision("b/foo.onnx", INT8) == Path("b/foo.int8.onnx")
    assert [onnx_for_precision(ONNX_NAME, p).name for p in PRECISIONS] == ["model.onnx", "model.fp16.onnx", "model.int8.onnx"]
    with pytest.raises(UserError, match="bf16"):
        onnx_for_precision(Path("model.onnx"), "bf16")


def test_the_cpu_int8_graph_is_named_beside_the_tensorrt_one() -> None:
    cpu = artifacts.cpu_int8_for(Path("b/model.onnx"))
    assert cpu == Path("b") / artifacts.CPU_INT8_NAME == Path("b/model.int8.cpu.onnx")
    assert artifacts.cpu_int8_for("b/model.int8.onnx") == cpu and artifacts.cpu_int8_for("b/foo.onnx").name == "foo.int8.cpu.onnx"
    assert artifacts.is_cpu_int8(cpu) and not artifacts.is_cpu_int8("b/model.int8.onnx")
    assert artifacts.tensorrt_int8_for(cpu) == Path("b/model.int8.onnx")
    assert precision_of(cpu) == INT8 and parity_path(cpu) == Path("b/model.int8.cpu.onnx-parity.json")
    found = artifacts.model_artifacts(Path("b/model.fp16.onnx"))
    assert cpu in found and parity_path(cpu) in found


def test_engine_names_follow_the_precision() -> None:
    assert engine_path_for(Path("b/model.fp16.onnx")) == Path("b/model.fp16.engine")
    assert engine_path_for(Path("b/model.int8.onnx")) == Path("b/model.int8.engine")
    assert engine_path_for(Path("b/model.onnx")) == Path("b/model.fp32.engine")
    assert engine_path_for("b/foo.int8.onnx") == Path("b/foo.int8.engine")
    assert [engine_name(p) for p in PRECISIONS] == ["model.fp32.engine", "model.fp16.engine", "model.int8.engine"]


def test_records_beside_an_engine() -> None:
    engine = Path("b/model.int8.engine")
    assert sidecar_path(engine) == Path("b/model.int8.engine.json")
    assert layers_path(engine) == Path("b/model.int8.layers.json")
    assert parity_path(engine) == Path("b/model.int8.parity.json")
    assert parity_path(Path("b/model.int8.onnx")) == Path("b/model.int8.onnx-parity.json")
    assert artifacts.calibration_path(engine) == Path("b/calibration.json")
    assert artifacts.chart_path(Path("b/model.onnx")) == Path("b/calibration.png")
    assert artifacts.golden_path(engine) == Path("b/golden.npz")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_round_trips(precision: str) -> None:
    onnx = onnx_for_precision(Path("b") / ONNX_NAME, precision)
    engine = engine_path_for(onnx)
    assert engine.name == engine_name(precision)
    for path in (onnx, engine, sidecar_path(engine), layers_path(engine), parity_path(engine), parity_path(onnx)):
        assert precision_of(path) == precision, path


# --- nothing outside runtime/core/artifacts.py spells an artifact's file name or the precision list ---


def _spelled() -> tuple[str, ...]:
    names = [v for k, v in vars(artifacts).items() if k.endswith("_NAME") and isinstance(v, str)]
    suffixes = [artifacts.LAYERS_SUFFIX, artifacts.PARITY_SUFFIX, artifacts.ONNX_PARITY_SUFFIX]
    per_precision = [f".{p}." for p in PRECISIONS if p != FP32] + [f"model.{p}" for p in PRECISIONS]
    return (*names, *suffixes, artifacts.ENGINE_SUFFIX + artifacts.SIDECAR_SUFFIX, *per_precision)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants: documentation may name files."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def spelled_names(source: str) -> list[str]:
    """String literals in `source` that spell an artifact name (a literal with no space in it:
    a path piece, not prose in a message or help text) or copy the list of precisions."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    names = _spelled()
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if not any(ch.isspace() for ch in text) and any(name in text for name in names):
                hits.append(f"line {node.lineno}: {text!r}")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if len(node.elts) == len(PRECISIONS) and values == set(PRECISIONS):
                hits.append(f"line {node.lineno}: a copy of the precisions")
    return hits


def test_the_checker_catches_what_it_looks_for() -> None:
    bad = 'x = path.with_name("model.int8.onnx")\ny = f"{stem}.layers.json"\nz = ["fp32", "fp16", "int8"]\n'
    assert len(spelled_names(bad)) == 3
    fine = '"""Writes model.int8.onnx."""\nhelp = "the FP32 model.onnx"\nFLOATS = ("bf16", "fp16", "fp32")\n'
    assert spelled_names(fine) == []


def test_no_other_source_file_spells_an_artifact_name() -> None:
    own = ROOT / "runtime" / "core" / "artifacts.py"
    files = [p for d in SOURCE_DIRS for p in sorted((ROOT / d).rglob("*.py")) if p != own]
    assert len(files) > 20
    offenders = {
        str(p.relative_to(ROOT)): hits for p in files if (hits := spelled_names(p.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "use runtime.core.artifacts instead of spelling these names: " + json.dumps(offenders, indent=1)
