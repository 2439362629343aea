"""The runtime core's tests again under numpy 1.26, as JetPack 6 needs (its TensorRT bindings
are built against numpy 1.x), in .venv-numpy1: numpy 1.26, onnxruntime 1.23.2, Pillow, no torch
(`make numpy1-venv` builds it from tests/requirements-numpy1.txt; `make test` does).

The models those tests need are exported here, with torch, and handed over by folder
(conftest.PREBUILT), so the venv needs no torch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PREBUILT, ROOT

VENV_PYTHON = ROOT / ".venv-numpy1" / "bin" / "python"
# The core: parity, manifest, artifacts, the TensorRT runner against the test double, the
# ONNX Runtime backend, and the exact CPU preprocessing; and the engine build a Jetson runs.
CORE_TESTS = [
    "tests/runtime/test_parity.py",
    "tests/runtime/test_golden_provenance.py",
    "tests/runtime/test_manifest_validation.py",
    "tests/runtime/test_artifacts.py",
    "tests/runtime/test_profiles.py",
    "tests/runtime/test_tensorrt_runner.py",
    "tests/runtime/test_tensorrt_pipeline.py",
    "tests/runtime/test_tensorrt_device_input.py",
    "tests/runtime/test_onnxruntime_backend.py",
    "tests/runtime/test_preprocess.py",
    "tests/runtime/test_resample.py",
    "tests/export/test_engine_builder.py",
]

pytestmark = pytest.mark.skipif(
    not VENV_PYTHON.exists(), reason="no .venv-numpy1 here: `make numpy1-venv` builds it (`make test` does)"
)


def _venv(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_PYTHON), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_venv_has_numpy_1_and_no_torch() -> None:
    code = "import importlib.util as u, numpy; print(numpy.__version__, u.find_spec('torch') is None)"
    res = _venv("-c", code)
    assert res.returncode == 0, res.stderr
    version, no_torch = res.stdout.split()
    assert version.startswith("1.26.") and no_torch == "True"


def test_core_tests_pass_under_numpy_1(digits_export: Path, tiny_random_export: Path, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "digits_export").symlink_to(digits_export)
    (exports / "tiny_random_export").symlink_to(tiny_random_export)
    env = {**os.environ, PREBUILT: str(exports), "CONVMIXER_LOG": "WARNING"}
    env.pop("PYTHONPATH", None)  # the venv's own packages, not this interpreter's
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "tmp"), *CORE_TESTS]
    res = _venv(*args, env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout.splitlines()[-1] and " error" not in res.stdout.splitlines()[-1]
