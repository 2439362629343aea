from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_bench_prints_a_row_per_batch_and_torch_side_by_side(digits_export: Path) -> None:
    res = run_cli(
        "runtime", "bench", str(digits_export / "model.onnx"), "--batch", "1,4", "--seconds", "0.2", "--vs-torch"
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "convmixer_digits at 32x32" and "p50 ms" in lines[1]
    rows = [line.split() for line in lines[3:]]
    assert [(r[0], r[1]) for r in rows] == [
        ("onnxruntime:model.onnx", "1"),
        ("onnxruntime:model.onnx", "4"),
        ("torch-eager:cpu", "1"),
        ("torch-eager:cpu", "4"),
    ]
    assert all(float(r[2]) <= float(r[3]) <= float(r[4]) and float(r[5]) > 0 for r in rows)


def test_bench_rejects_bad_batch_list(digits_export: Path) -> None:
    res = run_cli("runtime", "bench", str(digits_export / "model.onnx"), "--batch", "0,x")
    assert res.returncode != 0 and "Traceback" not in res.stderr
