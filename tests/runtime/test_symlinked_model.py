"""One rule for a symlinked model file: the link is followed, and every companion file
(model.json, golden.npz, the sidecar, calibration.json) comes from the target's folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from runtime import load
from runtime.core.artifacts import model_path
from tests.calibration.conftest import copy_export
from tests.conftest import run_cli


def _linked(digits_export: Path, tmp_path: Path) -> Path:
    """elsewhere/model.onnx -> build/model.onnx, beside decoys that must not be read."""
    target = copy_export(digits_export, tmp_path / "build")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = elsewhere / "model.onnx"
    link.symlink_to(target)
    (elsewhere / "model.json").write_text("not JSON: the link's folder is never read")
    (elsewhere / "golden.npz").write_bytes(b"not an npz either")
    return link


def test_model_path_follows_a_link_and_leaves_other_paths_alone(digits_export: Path, tmp_path: Path) -> None:
    link = _linked(digits_export, tmp_path)
    assert model_path(link) == (tmp_path / "build" / "model.onnx").resolve()
    assert model_path("relative/model.onnx") == Path("relative/model.onnx")
    with load(link) as runner:
        assert runner.model_file == (tmp_path / "build" / "model.onnx").resolve()


def test_parity_through_a_link_uses_the_targets_golden(digits_export: Path, tmp_path: Path) -> None:
    res = run_cli("runtime", "parity", str(_linked(digits_export, tmp_path)))
    assert res.returncode == 0, res.stderr
    assert "not an npz" not in res.stderr


def test_classify_through_a_link_uses_the_targets_manifest(digits_export: Path, tmp_path: Path) -> None:
    link = _linked(digits_export, tmp_path)
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(tmp_path / "x.png")
    res = run_cli("runtime", "classify", str(link), str(tmp_path / "x.png"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"{tmp_path / 'x.png'}: ")


def test_classify_through_a_link_protects_the_targets_artifacts(digits_export: Path, tmp_path: Path) -> None:
    link = _linked(digits_export, tmp_path)
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(tmp_path / "x.png")
    manifest = tmp_path / "build" / "model.json"
    before = manifest.read_bytes()
    res = run_cli("runtime", "classify", str(link), str(tmp_path / "x.png"), "--output", str(manifest))
    assert res.returncode == 2 and "is an artifact of the model in use" in res.stderr, res.stderr
    assert manifest.read_bytes() == before
