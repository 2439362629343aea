"""SIGTERM (a batch scheduler, `timeout`) ends every command as Ctrl-C does: cleanup, one line, 143.

The commands are real subprocesses; tests.fakes.slow_rename stalls the first artifact
rename, so the signal lands while a temporary file sits in the artifact folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.cli.signals import EXIT_TERMINATED
from tests.calibration.conftest import copy_export
from tests.conftest import ROOT

LINE = "error: terminated (SIGTERM); no partial artifact was kept"


def _terminate_mid_write(tmp_path: Path, watched: Path, module: str, *args: str) -> tuple[int, str]:
    """Run `python -m module args` until it is about to rename an artifact into `watched`,
    send it SIGTERM (the process only, as `timeout` does); returns (exit code, stderr)."""
    marker, tmpdir = tmp_path / "writing", tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING", "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.slow_rename", str(marker), str(watched), module, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"{module} ended before writing: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.05)
        assert list(watched.glob(".*.tmp")), "the stalled write should have its temporary file"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # Our temporary folders (calibration.*, int8.*, pymp-*) and files; the environment may
    # keep a stray dotfile of its own there.
    ours = [p.name for p in tmpdir.iterdir() if p.is_dir() or p.suffix in (".tmp", ".onnx", ".json")]
    assert ours == [], "nothing may be left in the temporary folder (/tmp)"
    assert list(watched.glob("*.tmp")) + list(watched.glob(".*.tmp")) == []
    return proc.returncode, err


def _one_line(err: str) -> None:
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [LINE], err


def test_calibration_terminated_cleans_up_and_exits_143(digits_export: Path, tmp_path: Path) -> None:
    onnx = copy_export(digits_export, tmp_path / "build")
    rc, err = _terminate_mid_write(
        tmp_path, onnx.parent, "calibration", str(onnx), "--data", "digits", "--limit", "16", "--method", "max"
    )
    assert rc == EXIT_TERMINATED, err
    _one_line(err)
    assert not (onnx.parent / "model.int8.onnx").exists()


@pytest.mark.rtx
def test_engine_build_terminated_cleans_up_and_exits_143(digits_export: Path, tmp_path: Path) -> None:
    onnx = copy_export(digits_export, tmp_path / "build")
    rc, err = _terminate_mid_write(tmp_path, onnx.parent, "export", "engine", str(onnx), "--flavour", "tensorrt-rtx")
    assert rc == EXIT_TERMINATED, err
    _one_line(err)
    assert not (onnx.parent / "model.fp32.engine").exists()


def test_classify_terminated_cleans_up_and_exits_143(digits_export: Path, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.fromarray(np.full((16, 16), 60 * i, np.uint8)).save(images / f"{i}.png")
    out = tmp_path / "results"
    out.mkdir()
    rc, err = _terminate_mid_write(
        tmp_path,
        out,
        "runtime",
        "classify",
        str(digits_export / "model.onnx"),
        str(images),
        "--output",
        str(out / "labels.csv"),
        "--workers",
        "2",
    )
    assert rc == EXIT_TERMINATED, err
    _one_line(err)
    assert list(out.iterdir()) == []
