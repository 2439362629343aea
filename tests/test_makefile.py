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


def test_a_new_calib_does_not_reexport_model_onnx(tmp_path: Path) -> None:
    """CALIB feeds calibration only: the export stamp (what model.onnx depends on) stays the
    same file, unchanged, when the calibration folder changes."""
    b = tmp_path / "b"
    stamp = b / ".export-args"
    for calib in ("photos1", "photos2"):
        (tmp_path / calib).mkdir()
        res = _make(f"B={b}", str(stamp), "MODEL=m", f"CALIB={tmp_path / calib}")
        assert res.returncode == 0, res.stderr
        if calib == "photos1":
            first = (stamp.read_text(), stamp.stat().st_mtime_ns)
    assert (stamp.read_text(), stamp.stat().st_mtime_ns) == first
    assert "photos" not in first[0]


def test_golden_images_come_from_golden(tmp_path: Path) -> None:
    b = tmp_path / "b"
    res = _make(f"B={b}", str(b / ".export-args"), "MODEL=m", f"GOLDEN={tmp_path}")
    assert res.returncode == 0 and str(tmp_path) in (b / ".export-args").read_text()


def test_a_failing_step_is_named_before_its_error(tmp_path: Path) -> None:
    """Each pipeline step prints one `== step` line, and no recipe is echoed as shell text."""
    fail = tmp_path / "py"
    fail.write_text("#!/bin/sh\necho 'error: photos/corrupt.jpg: unreadable image' >&2\nexit 2\n")
    fail.chmod(0o755)
    b = tmp_path / "b"
    res = subprocess.run(
        ["make", "--no-print-directory", f"B={b}", str(b / "model.onnx"), "MODEL=m", f"PY={fail}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode != 0
    assert res.stdout.splitlines() == [f"== export m to ONNX: {b}/model.onnx"]
    assert "unreadable image" in res.stderr


def test_pipeline_recipes_are_not_echoed() -> None:
    """The targets a user runs (setup, engine, demo) print step lines, not shell text:
    every recipe line of theirs starts with @ (or continues one that does)."""
    developer = {"lint:", "typecheck:", "test:", "test-gpu:", "gpu-check:", "clean:"}
    target, previous = "", ""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line and not line.startswith(("\t", "#", " ")) and ":" in line:
            target = line.split()[0]
        elif line.startswith("\t") and target not in developer and not previous.endswith("\\") and not line.startswith(
            ("\t$(eval ", "\t$(if ", "\t$(error ")  # make's own functions: they expand to nothing, so echo nothing
        ):
            assert line.startswith("\t@"), f"{target} echoes: {line.strip()}"
        previous = line


def test_setup_says_each_step_before_it_runs() -> None:
    """`make setup` runs pip quietly for minutes: each install is announced by a step line."""
    recipe = (ROOT / "Makefile").read_text().split("\n$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0].splitlines()
    installs = [i for i, line in enumerate(recipe) if "pip install" in line or "install-tensorrt-stubs" in line]
    assert len(installs) == 4
    for i in installs:
        assert recipe[i - 1].lstrip("\t").startswith('@echo "== setup '), recipe[i - 1]
