"""benchmarks/gpu_pipeline.py: --help, the one-line refusal without a GPU, and the tiny
--cpu-backend run (nvImageCodec's CPU backend, the numpy reference, the CPU pipeline)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_pipeline.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_help_exits_0_and_writes_nothing(tmp_path: Path) -> None:
    res = _run("--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "--cpu-backend" in res.stdout and "--engine-ms" in res.stdout
    assert list(tmp_path.iterdir()) == []


def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    from runtime.app.images.gpu import missing

    if missing("tensorrt") is None:
        pytest.skip("a GPU and the gpu-images extra are here: the benchmark would run")
    res = _run("--count", "2", cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no GPU for this benchmark"), res.stderr
    assert res.stdout == "" and list(tmp_path.iterdir()) == []


def test_cpu_backend_run_prints_the_table(tmp_path: Path) -> None:
    pytest.importorskip("nvidia.nvimgcodec", reason="the gpu-images extra is not installed")
    res = _run("--cpu-backend", "--count", "4", "--batch", "2", "--seconds", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("no GPU: nvImageCodec's CPU backend; 4 images (synthetic 500x375")
    assert lines[1].split()[:3] == ["step", "what", "img/s"]
    # Fixed columns: step (14), what (52), img/s (9), note.
    rows = {line[15:67].strip(): line[68:77].strip() for line in lines[3:]}
    assert [line[:14].strip() for line in lines[3:]] == ["decode", "resize + crop"] + ["pipeline"] * 3 + ["classify"]

    def rate(what: str) -> float:
        return float(rows[what])

    assert rate("nvImageCodec CPU (libjpeg-turbo), CPU_ONLY") > 0
    assert rate("numpy reference (resample.py)") > 0
    assert rate("CPU per core: HostPipeline, 1 worker") > 0
    # The GPU rows are there, with no figure.
    for what in ("GPU: DevicePipeline, uint8 224 px", "GPU / CPU per core", "end to end"):
        assert rows[what] == "-", what
    assert len(lines) == 3 + 6
