"""scripts/verify_gpu.py (`make verify-gpu`) on this machine, which has no GPU: it says so in
one line and exits 2; a missing package is named with how to carry it as a wheel; the report
is one file with a row per step (the steps themselves need a GPU: stubbed here)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "verify_gpu.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_gpu", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_gpu"] = module  # its dataclass looks its module up by name
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no nvidia-smi on this PATH, whatever the machine
    res = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: verify-gpu needs an NVIDIA GPU")
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_verify_gpu_uses_the_given_python_and_installs_nothing(tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    if shutil.which("nvidia-smi") is not None:
        pytest.skip("this machine has a GPU driver")
    venv = tmp_path / "venv"
    res = subprocess.run(
        ["make", "-s", "--no-print-directory", "-C", str(ROOT), "verify-gpu", f"PYTHON={sys.executable}", f"VENV={venv}"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode != 0 and not venv.exists()  # no venv made, nothing installed
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "verify-gpu needs an NVIDIA GPU" in lines[0]


def test_a_missing_package_is_named_with_how_to_carry_it(monkeypatch: pytest.MonkeyPatch) -> None:
    vg = _module()
    monkeypatch.setattr(vg, "REQUIRED", {"PIL": "pillow", "no_such_module_xyz": "no-such-wheel"})
    why = vg.missing_package()
    assert why is not None and "\n" not in why
    assert why.startswith("no-such-wheel is not installed") and "pip download no-such-wheel" in why
    assert "--no-index --find-links wheels no-such-wheel" in why


def test_the_report_is_one_file_with_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    vg = _module()
    ran: list[list[str]] = []

    def fake_run(name: str, command: list[str], env: dict[str, str] | None = None) -> object:
        ran.append(command)
        return vg.Step(name, "FAIL" if "racecheck" in name else "pass", "output tail", 1.0)

    monkeypatch.setattr(vg, "gpus", lambda: ["NVIDIA H200, 570.00, 143771 MiB, 9.0", "NVIDIA H200, 570.00, 143771 MiB, 9.0"])
    monkeypatch.setattr(vg, "missing_package", lambda: None)
    monkeypatch.setattr(vg, "run", fake_run)
    monkeypatch.setattr(vg.shutil, "which", lambda name: f"/usr/local/cuda/bin/{name}")
    report = tmp_path / "out" / "report.md"
    engine = tmp_path / "model.fp16.engine"
    engine.write_bytes(b"x")
    assert vg.main(["--report", str(report), "--engine", str(engine)]) == 1  # racecheck failed
    text = report.read_text()
    assert "sm_90 resample_pass:" in text and "| nvrtc: kernels.cu for this GPU | pass |" in text  # real NVRTC
    for step in ("gpu and trt tests", "compute-sanitizer memcheck", "classify --decode gpu into the engine",
                 "benchmarks/gpu_pipeline.py", "device 1: benchmark", "device 1: classify --decode gpu"):  # fmt: skip
        assert f"| {step} | " in text, step
    assert "| compute-sanitizer racecheck | FAIL |" in text and "GPU 1: NVIDIA H200" in text
    assert not any("install" in cmd or "pip" in cmd for cmd in ran)
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.md"]
    assert "failed: compute-sanitizer racecheck" in capsys.readouterr().err
