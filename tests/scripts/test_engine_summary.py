"""scripts/engine_summary.py: the table that ends `make engine`, on a build folder made by hand."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from runtime.core.artifacts import (
    FP16,
    INT8,
    ONNX_NAME,
    ONNX_SUFFIX,
    engine_path_for,
    layers_path,
    onnx_for_precision,
    parity_path,
    sidecar_path,
)
from runtime.core.atomic import write_json_atomic
from runtime.core.engine_meta import EngineMeta

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "engine_summary.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def add_engine(build: Path, precision: str, passed: bool | None, onnx_only: bool = False) -> Path:
    engine = engine_path_for(onnx_for_precision(build / ONNX_NAME, precision))
    engine.write_bytes(b"plan")
    meta = EngineMeta(
        engine_sha256=hashlib.sha256(b"plan").hexdigest(),
        engine_size=4,
        library_version="1.7.1",
        gpu_name=None,
        compute_capability=None,
        precision=precision,
        profiles=[],
        source_onnx=onnx_for_precision(ONNX_NAME, precision).name,
        source_onnx_sha256="",
        build_seconds=12.5,
        flavour="tensorrt-rtx",
        target_compute_capabilities=["8.6", "8.9"],
        built_with_gpu=False,
    )
    write_json_atomic(sidecar_path(engine), meta.to_dict())
    write_json_atomic(layers_path(engine), {"layers": [], "summary": {"fp32": 0, "fp16": 3, "int8": 9}})
    if passed is not None:
        where = parity_path(engine.with_suffix(ONNX_SUFFIX)) if onnx_only else parity_path(engine)
        write_json_atomic(where, {"passed": passed})
    return engine


def test_help_exits_0_and_writes_nothing(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert res.returncode == 0 and res.stdout.startswith("usage:") and "build_dir" in res.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_empty_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    for folder in (tmp_path / "absent", tmp_path):
        res = run(str(folder))
        assert res.returncode == 2 and res.stdout == "", res.stdout
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and str(folder) in res.stderr


def test_table_rows_and_verdict(tmp_path: Path) -> None:
    add_engine(tmp_path, FP16, passed=True)
    add_engine(tmp_path, INT8, passed=True, onnx_only=True)
    res = run(str(tmp_path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:2] == ["engine", "flavour"]
    fp16, int8 = lines[2].split(), lines[3].split()
    assert fp16[:3] == ["model.fp16.engine", "tensorrt-rtx", "8.6,8.9"] and fp16[-3:] == ["engine", "PASS", "12.5"]
    assert int8[0] == "model.int8.engine" and int8[-3:] == ["onnx", "PASS", "12.5"]
    assert "fp32:0 fp16:3 int8:9" in lines[2]
    assert "checked 'onnx'" in lines[-1] and "parity of parity" not in res.stdout
    assert lines[0].split()[-4:] == ["checked", "parity", "build", "s"]

    add_engine(tmp_path, INT8, passed=False)  # the engine's own parity outranks its graph's
    res = run(str(tmp_path))
    assert res.returncode == 1 and res.stdout.splitlines()[3].split()[-3:] == ["engine", "FAIL", "12.5"]


def test_the_int8_row_has_a_note_and_random_weights_are_flagged(tmp_path: Path) -> None:
    add_engine(tmp_path, FP16, passed=True)
    res = run(str(tmp_path))
    assert "quantize/dequantize and reformat layers count" not in res.stdout and "RANDOM" not in res.stdout
    add_engine(tmp_path, INT8, passed=True)
    write_json_atomic(tmp_path / "model.json", {"model": "convmixer_768_32", "weights": {"source": "random-init"}})
    res = run(str(tmp_path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("RANDOM WEIGHTS (convmixer_768_32: no checkpoint)")
    int8_row = next(i for i, line in enumerate(lines) if line.startswith("model.int8.engine"))
    assert any("quantize/dequantize and reformat layers count" in line for line in lines[int8_row + 1 :])
