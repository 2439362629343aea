from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, run_cli


def test_bench_prints_a_row_per_batch(digits_export: Path) -> None:
    res = run_cli("runtime", "bench", str(digits_export / "model.onnx"), "--batch", "1,4", "--seconds", "0.2")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "convmixer_digits at 32x32, input float32 NCHW" and "p50 ms" in lines[1]
    rows = [line.split() for line in lines[3:]]
    assert [(r[0], r[1]) for r in rows] == [("onnxruntime:model.onnx", "1"), ("onnxruntime:model.onnx", "4")]
    assert all(float(r[2]) <= float(r[3]) <= float(r[4]) and float(r[5]) > 0 for r in rows)


def test_bench_with_images_adds_host_pipeline_and_end_to_end_rows(digits_export: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    res = run_cli(
        "runtime", "bench", str(digits_export / "model.onnx"), "--batch", "4", "--seconds", "0.2",
        "--images", str(tmp_path), "--workers", "1",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    backend_rate = float(lines[3].split()[5])
    head = lines.index(next(line for line in lines if line.startswith("stage")))
    host, e2e = lines[head + 2], lines[head + 3]
    assert host.startswith("host pipeline (float32)") and e2e.startswith("end-to-end classify")
    e2e_cells = e2e.split()
    # batch, workers, images, img/s, per worker, of backend, of min(backend, host)
    assert e2e_cells[2:4] == ["4", "1"] and int(e2e_cells[4]) >= 6
    rate, of_backend = float(e2e_cells[5]), float(e2e_cells[7].rstrip("%")) / 100
    assert abs(of_backend - rate / backend_rate) < 0.01 * max(1.0, of_backend)


def test_bench_rejects_bad_batch_list(digits_export: Path) -> None:
    res = run_cli("runtime", "bench", str(digits_export / "model.onnx"), "--batch", "0,x")
    assert res.returncode != 0 and "Traceback" not in res.stderr


def test_torch_side_by_side_lives_in_benchmarks(digits_export: Path) -> None:
    script = ROOT / "benchmarks" / "torch_eager.py"
    res = subprocess.run(
        [sys.executable, str(script), str(digits_export / "model.onnx"), "--batch", "1,4", "--seconds", "0.2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[3:]]
    assert [(r[0], r[1]) for r in rows] == [
        ("onnxruntime:model.onnx", "1"),
        ("onnxruntime:model.onnx", "4"),
        ("torch-eager:cpu", "1"),
        ("torch-eager:cpu", "4"),
    ]


def test_bench_shows_progress_per_batch_size_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar over the batch sizes (tqdm with disable=None: drawn on a terminal only), and
    --help names the warm-ups and the minimum timed calls."""
    import runtime.app.bench as bench
    from runtime.app.cli.main import build_parser

    made: list[dict[str, object]] = []
    real = bench.tqdm

    def recording(iterable: object, **kwargs: object) -> object:
        made.append(kwargs)
        return real(iterable, **{**kwargs, "disable": True})

    monkeypatch.setattr(bench, "tqdm", recording)

    class Runner:
        def infer(self, x: np.ndarray) -> np.ndarray:
            return np.zeros((len(x), 10), np.float32)

        def describe(self) -> str:
            return "fake"

    rows = bench.bench_runner(Runner(), [1, 2], (8, 8), min_seconds=0.0)  # type: ignore[arg-type]
    assert [r.iterations for r in rows] == [bench.MIN_ITERATIONS] * 2
    assert len(made) == 1 and made[0]["disable"] is None
    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    seconds = next(a for a in sub.choices["bench"]._actions if a.dest == "seconds")  # type: ignore[attr-defined]
    assert f"{bench.WARMUP_ITERATIONS} warm-up" in seconds.help and f"at least {bench.MIN_ITERATIONS}" in seconds.help
