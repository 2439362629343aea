"""`classify --ray` when Ray cannot start: a local cluster's object store is sized to what
an address-space limit (`ulimit -v`) allows, and a start that still fails is one line
saying what failed and how to size a cluster by hand."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runtime.core.errors import UserError
from tests.conftest import ROOT

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

from runtime.app.ray import session  # noqa: E402

GIB = 1 << 30


def _with_address_space(limit: int, code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n{code}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_object_store_fits_an_address_space_limit() -> None:
    code = "from runtime.app.ray.session import object_store_bytes; print(object_store_bytes())"
    unlimited = resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY
    if unlimited:
        assert session.object_store_bytes() is None  # Ray's own default
    from runtime.core.memory import physical_memory

    ram = physical_memory() or 0
    assert int(_with_address_space(6 * GIB, code)) == min(6 * GIB // 4, int(ram * 0.3))
    assert int(_with_address_space(256 << 20, code)) == session.MIN_OBJECT_STORE


def test_a_local_cluster_that_cannot_start_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(**kwargs: Any) -> None:
        os.write(2, b"[raylet] C++ chatter that must not reach the user\n")
        raise Exception(  # what Ray raises when its raylet dies at start-up
            "The current node timed out during startup. This could happen because some of the raylet "
            "failed to startup or the GCS has become overloaded.\nmore lines"
        )

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fails)
    monkeypatch.setattr(session, "object_store_bytes", lambda: 3 * GIB // 2)
    with pytest.raises(UserError) as info, session.ray_session(None):
        pass
    assert str(info.value) == (
        "cannot start a local Ray cluster with a 1.5 GiB object store: The current node timed out during "
        "startup. This could happen because some of the raylet failed to startup or the GCS has become "
        f"overloaded.; {session.START_HINT}"
    )


def test_classify_on_ray_under_a_memory_ulimit(digits_export: Path, tmp_path: Path) -> None:
    """The issue's case: under `ulimit -v` Ray's default store (30% of RAM) cannot be mapped."""
    for i in range(3):
        Image.fromarray(np.full((16, 16), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    limit = 6 * GIB
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING"}
    res = subprocess.run(
        [sys.executable, "-m", "runtime", "classify", str(digits_export / "model.onnx"), str(tmp_path), "--ray"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 3
