"""On ONNX Runtime's CPU, model.int8.onnx runs as its CPU INT8 graph (runtime.core.backends.onnxruntime.onnxruntime_graph)."""

from __future__ import annotations

import json
import logging
import platform
import shutil
from pathlib import Path

import pytest

import runtime
from runtime.core.artifacts import cpu_int8_for, model_artifacts
from runtime.core.backends.onnxruntime import onnxruntime_graph
from tests.conftest import run_cli


def _copy(src: Path, dst: Path) -> Path:
    for p in src.iterdir():
        shutil.copy(p, dst / p.name)
    return dst


def test_load_runs_the_cpu_graph_for_model_int8_onnx_and_says_so(
    digits_int8: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cpu = cpu_int8_for(digits_int8 / "model.onnx")
    assert cpu.name == "model.int8.cpu.onnx" and cpu in model_artifacts(digits_int8 / "model.onnx")
    with caplog.at_level(logging.INFO, logger="runtime.core.backends.onnxruntime"):
        runner = runtime.load(digits_int8 / "model.int8.onnx")
    assert runner.model_file == cpu
    (line,) = [r.getMessage() for r in caplog.records if r.name == "runtime.core.backends.onnxruntime"]
    assert "model.int8.cpu.onnx" in line and "CPU" in line
    assert runtime.load(cpu).model_file == cpu  # asked for by name: runs as it is


def test_no_switch_on_a_gpu_provider_or_without_a_recorded_cpu_graph(digits_int8: Path, tmp_path: Path) -> None:
    int8 = digits_int8 / "model.int8.onnx"
    assert onnxruntime_graph(int8, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == int8
    assert onnxruntime_graph(int8, ["CPUExecutionProvider"]) == cpu_int8_for(int8)
    assert onnxruntime_graph(int8, ["CPUExecutionProvider"], cpu_graph=False) == int8  # --no-cpu-graph
    assert runtime.load(int8, cpu_graph=False).model_file == int8
    d = _copy(digits_int8, tmp_path)
    report = json.loads((d / "calibration.json").read_text())
    del report["cpu_int8_onnx_sha256"]  # as after `python -m calibration --no-cpu-graph`
    (d / "calibration.json").write_text(json.dumps(report))
    assert onnxruntime_graph(d / "model.int8.onnx", ["CPUExecutionProvider"]) == d / "model.int8.onnx"


def test_a_stale_cpu_graph_is_refused_and_a_missing_int8_graph_never_stood_in_for(
    digits_int8: Path, tmp_path: Path
) -> None:
    from runtime.core.errors import UserError

    d = _copy(digits_int8, tmp_path)
    int8 = d / "model.int8.onnx"
    with open(cpu_int8_for(int8), "ab") as fh:  # not the bytes calibration.json records
        fh.write(b"\0")
    with pytest.raises(UserError, match="records the CPU INT8 graph it wrote as .*--no-cpu-graph"):
        onnxruntime_graph(int8, ["CPUExecutionProvider"])  # classify, evaluate and bench refuse it too
    assert onnxruntime_graph(int8, ["CPUExecutionProvider"], cpu_graph=False) == int8
    shutil.copy(digits_int8 / "model.int8.cpu.onnx", cpu_int8_for(int8))
    int8.unlink()  # model.int8.onnx not written (a missed --max-drop budget): no stand-in for it
    assert onnxruntime_graph(int8, ["CPUExecutionProvider"]) == int8


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the warning is for x86 CPUs")
def test_fp16_on_an_x86_cpu_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runtime.core.backends.onnxruntime"):
        onnxruntime_graph(Path("b/model.fp16.onnx"), ["CPUExecutionProvider"])
        onnxruntime_graph(Path("b/model.fp16.onnx"), ["CUDAExecutionProvider"])
        onnxruntime_graph(Path("b/model.onnx"), ["CPUExecutionProvider"])
    (line,) = [r.getMessage() for r in caplog.records]
    assert "slower than FP32" in line and "ARM" in line


def test_parity_passes_and_checks_the_cpu_graphs_hash(digits_int8: Path, tmp_path: Path) -> None:
    res = run_cli("runtime", "parity", str(digits_int8 / "model.int8.onnx"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("int8 parity") and "-> PASS" in res.stdout
    d = _copy(digits_int8, tmp_path)
    report = json.loads((d / "calibration.json").read_text())
    report["cpu_int8_onnx_sha256"] = "0" * 64
    (d / "calibration.json").write_text(json.dumps(report))
    bad = run_cli("runtime", "parity", str(d / "model.int8.onnx"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith(f"error: {d / 'model.int8.cpu.onnx'}: sha256 ") and "0" * 64 in bad.stderr
    as_given = run_cli("runtime", "parity", str(d / "model.int8.onnx"), "--no-cpu-graph")  # TensorRT's graph: its own hash
    assert as_given.returncode == 0 and "-> PASS" in as_given.stdout, as_given.stderr


def test_evaluate_bench_and_classify_run_it(digits_int8: Path, digit_images: Path) -> None:
    int8 = str(digits_int8 / "model.int8.onnx")
    res = run_cli("runtime", "evaluate", int8, "--data", "digits", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["top1"] >= 0.97
    res = run_cli("runtime", "bench", int8, "--batch", "1", "--seconds", "0")
    assert res.returncode == 0 and "onnxruntime" in res.stdout, res.stderr
    res = run_cli("runtime", "classify", int8, str(digit_images), "--topk", "1", "--workers", "0")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    predicted = [line.rsplit(": ", 1) for line in lines]  # "<path>: <label> <prob>"
    assert len(lines) == 12 and sum(f"_label{best.split()[0]}." in path for path, best in predicted) >= 11
