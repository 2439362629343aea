"""Ctrl-C or SIGTERM during `export engine` (a real TensorRT-RTX build, in a subprocess):
exit 130 or 143, no engine, sidecar or layer report, never exit 0 after the signal.

TensorRT calls Python back during the build, and the binding swallowed a KeyboardInterrupt
raised there (`Exception caught in log()`); the build went on and exited 0. The signal is
sent at several moments after the build starts; where the process had already finished
(exited, or printed its last line), the run is not counted: that build was not interrupted."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.rtx

OUTPUTS = ("model.fp32.engine", "model.fp32.engine.json", "model.fp32.layers.json")
DELAYS_S = (0.0, 0.05, 0.15, 0.3, 0.5)


def _interrupted_build(folder: Path, signum: int, delay: float) -> tuple[int | None, str]:
    """(exit code, stderr) of a build sent `signum` `delay` s after it logs that it started;
    exit code None when it had finished before the signal could be sent (exited, or printed
    its last line)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "INFO"}
    cmd = [sys.executable, "-m", "export", "engine", str(folder / "model.onnx"), "--flavour", "tensorrt-rtx"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stderr is not None and proc.stdout is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "building model.fp32.engine" in line:
            break
    time.sleep(delay)
    printed, _, _ = select.select([proc.stdout], [], [], 0)  # its one stdout line is its last
    finished = bool(printed) or proc.poll() is not None
    if not finished:
        proc.send_signal(signum)
    _, rest = proc.communicate(timeout=300)
    return (None if finished else proc.returncode), "".join(seen) + rest


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_build_leaves_nothing_and_exits_non_zero(
    digits_export: Path, tmp_path: pytest.TempPathFactory, signum: int
) -> None:
    expected = 130 if signum == signal.SIGINT else 143
    interrupted = 0
    for i, delay in enumerate(DELAYS_S):
        folder = Path(str(tmp_path)) / f"run{i}"
        folder.mkdir()
        for name in ("model.onnx", "model.json", "golden.npz"):
            shutil.copyfile(digits_export / name, folder / name)
        code, stderr = _interrupted_build(folder, signum, delay)
        assert "Exception caught in log()" not in stderr, stderr
        if code is None:
            continue
        interrupted += 1
        left = [name for name in OUTPUTS if (folder / name).exists()]
        assert code == expected, (delay, code, stderr)
        assert left == [], (delay, left)
        assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert stderr.strip().splitlines()[-1].startswith("error: "), stderr
    assert interrupted >= 2, "the builds finished before any signal: nothing was tested"
