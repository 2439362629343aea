"""The timing cache is merged, not overwritten, under a file lock (export/trt/timing_cache.py).

Checked against the TensorRT test double (tests/fakes): its cache holds one entry per graph
and profile a build measured, and `combine` merges caches as TensorRT's does. Two builds
that start from the same empty cache, as `make -j` starts the FP16 and INT8 builds, must
both leave their entries."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.core.errors import UserError
from tests.conftest import ROOT
from tests.fakes import fake_tensorrt

# The other build, in its own process as under `make -j`, with its own TensorRT double.
OTHER_BUILD = """
import sys
from pathlib import Path

import pytest

from tests.fakes import fake_tensorrt

fake_tensorrt.install(pytest.MonkeyPatch())
from export.engine import build_engine, default_options

onnx, cache = Path(sys.argv[1]), Path(sys.argv[2])
options = default_options(onnx)
options.timing_cache = cache
build_engine(onnx, options)
"""


@pytest.fixture
def model_dir(digits_export: Path, tmp_path: Path) -> Path:
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    for precision in ("fp16", "int8"):  # the double builds any graph; the names are what differ
        (d / f"model.{precision}.onnx").write_bytes((d / "model.onnx").read_bytes())
    return d


def _entries(cache: Path) -> set[str]:
    data = cache.read_bytes()
    assert data.startswith(b"timing-cache:")
    return set(json.loads(data[len(b"timing-cache:") :])["entries"])


def _build(onnx: Path, cache: Path) -> None:
    from export.engine import build_engine, default_options

    options = default_options(onnx)
    options.timing_cache = cache
    build_engine(onnx, options)


def test_two_builds_from_one_empty_cache_both_keep_their_entries(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch)
    cache = model_dir / "timing.cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING"}

    def the_int8_build_finishes_first() -> None:
        args = [sys.executable, "-c", OTHER_BUILD, str(model_dir / "model.int8.onnx"), str(cache)]
        res = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr

    trt.during_build = the_int8_build_finishes_first
    _build(model_dir / "model.fp16.onnx", cache)
    assert (model_dir / "model.int8.engine").is_file() and (model_dir / "model.fp16.engine").is_file()
    first, then = trt.calls["timing_cache_reads"]
    assert first == b""  # the fp16 build started from an empty cache, as the int8 build did ...
    assert {e.split()[0] for e in _entries(cache)} == {"model.fp16.onnx", "model.int8.onnx"}  # ... and both stayed
    assert _entries(cache) > set(json.loads(then[len(b"timing-cache:") :])["entries"])


def test_rebuilds_keep_what_earlier_builds_learnt(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tensorrt.install(monkeypatch)
    cache = model_dir / "timing.cache"
    _build(model_dir / "model.fp16.onnx", cache)
    fp16 = _entries(cache)
    _build(model_dir / "model.int8.onnx", cache)
    assert fp16 < _entries(cache) and len(_entries(cache)) == 2 * len(fp16)


def test_the_cache_file_is_read_under_its_lock(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each read of the file (before the build, and again before the merge) holds the lock."""
    import export.trt.timing_cache as timing_cache

    fake_tensorrt.install(monkeypatch)
    cache = model_dir / "timing.cache"
    held: list[bool] = []
    real_read = timing_cache._read

    def read_while_checking_the_lock(path: Path) -> bytes:
        fd = os.open(timing_cache.lock_path(path), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process's attempt
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        return real_read(path)

    monkeypatch.setattr(timing_cache, "_read", read_while_checking_the_lock)
    _build(model_dir / "model.fp16.onnx", cache)
    _build(model_dir / "model.int8.onnx", cache)
    assert held == [True] * 4
    fd = os.open(timing_cache.lock_path(cache), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released once the build is done
    os.close(fd)


def test_a_cache_from_another_version_written_meanwhile_is_not_overwritten(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch)
    cache = model_dir / "timing.cache"
    foreign = b'timing-cache:{"entries": {"theirs": 2.0}, "version": "9.0.0"}'
    trt.during_build = lambda: cache.write_bytes(foreign)
    with pytest.raises(UserError, match="could not combine .* the engine was built, the cache file left as it was"):
        _build(model_dir / "model.fp16.onnx", cache)
    assert cache.read_bytes() == foreign and (model_dir / "model.fp16.engine").is_file()
    trt.during_build = None
    with pytest.raises(UserError, match="could not use this timing cache"):  # nor used for the next build
        _build(model_dir / "model.fp16.onnx", cache)
