"""Makefile targets that talk to a user: what `make engine` says about INT8, and `make
test-gpu` on a machine without a GPU. Run without their `setup` prerequisite (PY= points at
this interpreter), so nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, _missing

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make here")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args, f"PY={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_engine_without_calib_says_int8_needs_one_and_how() -> None:
    res = _make("int8-note", "MODEL=convmixer_768_32")
    assert res.returncode == 0
    assert "no INT8 engine: INT8 needs a calibration set, CALIB=PATH" in res.stdout
    assert "make engine MODEL=convmixer_768_32 CALIB=" in res.stdout


def test_make_engine_with_calib_says_nothing_about_it() -> None:
    res = _make("int8-note", "CALIB=digits")
    assert res.returncode == 0 and res.stdout == ""


def test_make_engine_runs_the_summary_then_ends_with_the_note(tmp_path: Path) -> None:
    """What make itself would run for `make engine` without CALIB (`-n`: printed, not run;
    the recursive makes it would start are expanded too), in order."""
    res = _make("-n", "engine", "MODEL=convmixer_768_32", "PRECISION=fp16", f"B={tmp_path}")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    summary = [i for i, line in enumerate(lines) if "engine_summary.py" in line]
    assert summary and "no INT8 engine: INT8 needs a calibration set" in "\n".join(lines[summary[-1] + 1 :])
    assert "no INT8 engine" not in "\n".join(lines[: summary[-1]])  # said once, at the end


@pytest.mark.skipif(_missing("gpu") is None, reason="this machine has a GPU")
def test_test_gpu_without_a_gpu_says_so_in_one_line() -> None:
    res = _make("gpu-check")
    assert res.returncode != 0
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "make test-gpu needs an NVIDIA GPU and finds none here" in lines[0]
