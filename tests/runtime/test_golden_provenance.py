"""golden.npz that cannot be trusted, and ONNX graphs that are not the exported ones, are refused
on one line (parity of an ONNX file checks its provenance as engines do)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from runtime.core.errors import UserError
from runtime.core.golden import load_golden, run_parity
from runtime.core.io import sha256_file
from tests.conftest import run_cli


@pytest.fixture
def model_dir(digits_export: Path, tmp_path: Path) -> Path:
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)
    return tmp_path


def _rewrite(path: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    with np.load(path) as golden:
        arrays = {k: golden[k] for k in golden.files}
    edit(arrays)
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _more_classes(a: dict[str, np.ndarray]) -> None:
    for k in [k for k in a if k.startswith("logits_")]:
        a[k] = np.concatenate([a[k], a[k][:, :1]], axis=1)


def _one_pair_more_classes(a: dict[str, np.ndarray]) -> None:
    a["logits_1"] = np.concatenate([a["logits_1"], a["logits_1"][:, :1]], axis=1)


def _nan_logits(a: dict[str, np.ndarray]) -> None:
    a["logits_0"] = a["logits_0"].copy()
    a["logits_0"][0, 0] = np.nan


def _rows_mismatch(a: dict[str, np.ndarray]) -> None:
    a["logits_0"] = a["logits_0"][:-1]


def _flat_input(a: dict[str, np.ndarray]) -> None:
    a["input_0"] = a["input_0"].reshape(len(a["input_0"]), -1)


def _missing_logits(a: dict[str, np.ndarray]) -> None:
    del a["logits_0"]


@pytest.mark.parametrize(
    "edit", [_more_classes, _one_pair_more_classes, _nan_logits, _rows_mismatch, _flat_input, _missing_logits]
)
def test_inconsistent_golden_is_one_line(model_dir: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    _rewrite(model_dir / "golden.npz", edit)
    res = run_cli("runtime", "parity", str(model_dir / "model.onnx"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "golden.npz" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_golden_is_one_line(model_dir: Path, keep: float) -> None:
    path = model_dir / "golden.npz"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(UserError, match="golden.npz"):
        load_golden(path)
    res = run_cli("runtime", "parity", str(model_dir / "model.onnx"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr


def test_edited_onnx_is_refused_naming_both_hashes(model_dir: Path) -> None:
    onnx_path = model_dir / "model.onnx"
    recorded = json.loads((model_dir / "model.json").read_text())["onnx_sha256"]
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")  # still a loadable graph, not the exported one
    actual = sha256_file(onnx_path)
    res = run_cli("runtime", "parity", str(onnx_path))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert recorded in res.stderr and actual in res.stderr


def test_int8_graph_is_checked_against_calibration_json(model_dir: Path) -> None:
    """The INT8 graph's record is calibration.json: the graph it wrote, from which model.onnx."""
    recorded = json.loads((model_dir / "model.json").read_text())["onnx_sha256"]
    int8 = model_dir / "model.int8.onnx"
    shutil.copy(model_dir / "model.onnx", int8)  # a stand-in graph; only hashes matter here
    report = model_dir / "calibration.json"
    report.write_text(json.dumps({"source_onnx_sha256": recorded, "int8_onnx_sha256": sha256_file(int8)}))
    assert run_parity(int8).images > 0
    report.write_text(json.dumps({"source_onnx_sha256": "0" * 64, "int8_onnx_sha256": sha256_file(int8)}))
    with pytest.raises(UserError, match=f"sha256 {'0' * 64}.*records {recorded}"):
        run_parity(int8)
    report.write_text(json.dumps({"source_onnx_sha256": recorded, "int8_onnx_sha256": "1" * 64}))
    with pytest.raises(UserError, match=f"{sha256_file(int8)}.*{'1' * 64}"):
        run_parity(int8)


def test_fp16_graph_without_a_record_says_so(model_dir: Path) -> None:
    shutil.copy(model_dir / "model.onnx", model_dir / "model.fp16.onnx")
    assert "provenance not checked" in run_parity(model_dir / "model.fp16.onnx").note
