"""SIGTERM (a batch scheduler, `timeout`) ends every command as Ctrl-C does: cleanup, one line, 143.

The commands are real subprocesses; tests.fakes.slow_rename stalls the first artifact
rename, so the signal lands while a temporary file sits in the artifact folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.cli.exits import TERMINATED as EXIT_TERMINATED
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


def _many_images(folder: Path) -> Path:
    """3000 inputs (links to 30 photos): a run still going when the signals land."""
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for i in range(30):
        Image.fromarray(np.roll(noise, i, axis=1)).save(folder / f"{i:03d}.jpg", quality=90)
    for i in range(30, 3000):
        (folder / f"{i:04d}.jpg").symlink_to(folder / f"{i % 30:03d}.jpg")
    return folder


def _ctrl_c_twice(model: Path, images: Path, marker: Path | None, gap: float) -> tuple[int, str]:
    """Classify with Ctrl-C (SIGINT to the process group, as a terminal sends it), then a
    second one: once `marker` exists (the cleanup has begun), else `gap` seconds later."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING", "PYTHONUNBUFFERED": "1"}
    wrapper = ["-m", "tests.fakes.slow_cleanup", str(marker)] if marker else []
    proc = subprocess.Popen(
        [sys.executable, *wrapper, *([] if marker else ["-m"]), "runtime", "classify", str(model), str(images)]
        + ["--batch", "2", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a foreground command's Ctrl-C
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # classification is under way
        os.killpg(proc.pid, signal.SIGINT)
        if marker:
            while not marker.exists() and proc.poll() is None:
                time.sleep(0.02)
        else:
            time.sleep(gap)  # the stimulus only: nothing below depends on how long anything took
        with contextlib.suppress(ProcessLookupError):  # already gone: nothing left to break
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


def _interrupted_once(rc: int, err: str) -> None:
    assert rc == 130, err
    assert "Exception ignored" not in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: interrupted; no partial artifact was kept"
    ]


def test_a_second_ctrl_c_inside_the_cleanup_is_ignored(digits_export: Path, tmp_path: Path) -> None:
    """The second Ctrl-C lands while the first one's cleanup stops the decode workers
    (tests.fakes.slow_cleanup holds it there): that cleanup runs to its end, and the run
    still ends with exit 130 and the one line, no "Exception ignored" traceback."""
    marker = tmp_path / "cleaning"
    rc, err = _ctrl_c_twice(digits_export / "model.onnx", _many_images(tmp_path / "many"), marker, 0)
    assert marker.exists() and Path(f"{marker}.done").exists(), "the cleanup must run to its end"
    _interrupted_once(rc, err)


def test_a_second_ctrl_c_200ms_later_is_ignored(digits_export: Path, tmp_path: Path) -> None:
    """The issue's report as it happens: wherever the second Ctrl-C lands, the same end."""
    _interrupted_once(*_ctrl_c_twice(digits_export / "model.onnx", _many_images(tmp_path / "many"), None, 0.2))
