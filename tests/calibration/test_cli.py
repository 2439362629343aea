"""`python -m calibration` names the files it wrote after the graph it was given."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from calibration import __main__ as cli
from runtime.core.artifacts import CALIBRATION_NAME, GOLDEN_NAME, MANIFEST_NAME, ONNX_NAME


def test_a_graph_not_named_model_onnx_gets_its_own_int8_name(
    digits_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (MANIFEST_NAME, GOLDEN_NAME):
        shutil.copy(digits_export / name, tmp_path / name)
    foo = tmp_path / "foo.onnx"
    shutil.copy(digits_export / ONNX_NAME, foo)
    args = [str(foo), "--data", "digits", "--limit", "16", "--method", "max"]

    assert cli.main(args) == 0
    out = capsys.readouterr().out
    int8 = tmp_path / "foo.int8.onnx"
    assert int8.is_file() and not (tmp_path / "model.int8.onnx").exists()
    assert f"wrote {int8} and {tmp_path / CALIBRATION_NAME}" in out

    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{int8} is up to date") and "model.int8.onnx" not in out


def test_few_images_no_heldout_and_random_weights_are_said_plainly(
    digits_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """8 images: a warning that this is too few, and a line saying there is no held-out
    report; the random-weights line only where figures follow, and then once."""
    import json

    import numpy as np

    from runtime.app.images.datasets import load_digits
    from runtime.core.manifest import load_manifest
    from runtime.core.preprocess import preprocess

    for name in (ONNX_NAME, GOLDEN_NAME):
        shutil.copy(digits_export / name, tmp_path / name)
    manifest = json.loads((digits_export / MANIFEST_NAME).read_text())
    manifest["weights"] = {"source": "random-init", "checkpoint": None, "checkpoint_sha256": "random-init, seed 0"}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    cfg = load_manifest(tmp_path / ONNX_NAME).preprocessing
    train = load_digits("train")
    np.save(tmp_path / "eight.npy", np.stack([preprocess(train.image(i), cfg) for i in range(8)]))
    model = str(tmp_path / ONNX_NAME)

    with caplog.at_level("WARNING"):
        assert cli.main([model, "--data", str(tmp_path / "eight.npy"), "--method", "max"]) == 0
    out = capsys.readouterr().out
    assert "calibrated on only 8 images" in caplog.text and "fewer than about 100" in caplog.text
    assert "no held-out report: all 8 usable images went to calibration" in out
    assert "meaningless" not in out + caplog.text  # no figures follow

    caplog.clear()
    assert cli.main([model, "--data", "digits", "--limit", "16", "--method", "max"]) == 0
    out = capsys.readouterr().out
    assert (out + caplog.text).count("meaningless") == 1 and "held-out (" in out
    assert out.index("meaningless") < out.index("held-out (")

    caplog.clear()
    assert cli.main([model, "--data", "digits", "--limit", "16", "--method", "max"]) == 0
    assert "meaningless" not in capsys.readouterr().out + caplog.text  # up to date: no figures
