"""classify --output never replaces an input image or an artifact of the model in use, and a
bad output path is found before any work."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

import runtime.app.cli.main as runtime_cli


@pytest.fixture
def setup(digits_export: Path, tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "build"
    model.mkdir()
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, model / name)
    (model / "calibration.json").write_text("{}")
    (model / "model.int8.engine.json").write_text("{}")
    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (8, 8), 50).save(images / "a.png")
    Image.new("L", (8, 8), 90).save(images / "b.csv", format="PNG")  # a PNG named .csv, named explicitly
    return model, images


def _artifact(name: str) -> Callable[[Path, Path], Path]:
    return lambda model, images: model / name


def _input(model: Path, images: Path) -> Path:
    return images / "b.csv"


def _link_to_manifest(model: Path, images: Path) -> Path:
    link = images.parent / "results.json"
    link.symlink_to(model / "model.json")
    return link


def _hardlink_to_input(model: Path, images: Path) -> Path:
    link = images.parent / "results.csv"
    os.link(images / "b.csv", link)
    return link


@pytest.mark.parametrize(
    "target",
    [
        _artifact("model.json"),
        _artifact("calibration.json"),
        _artifact("model.int8.engine.json"),
        _input,
        _link_to_manifest,
        _hardlink_to_input,
    ],
    ids=["model.json", "calibration.json", "engine-sidecar", "input", "symlink-to-model.json", "hardlink-to-input"],
)
def test_output_that_would_replace_a_file_in_use_is_refused(
    setup: tuple[Path, Path], target: Callable[[Path, Path], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    model, images = setup
    output = target(model, images)
    before = output.read_bytes()
    argv = ["classify", str(model / "model.onnx"), str(images), str(images / "b.csv"), "--output", str(output)]
    assert runtime_cli.main([*argv, "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "would overwrite it" in err, err
    assert output.read_bytes() == before


def test_existing_folder_is_refused_before_any_work(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, images = setup
    folder = images.parent / "out.jsonl"
    folder.mkdir()

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr("runtime.core.loader.load", no_work)
    assert runtime_cli.main(["classify", str(model / "model.onnx"), str(images), "--output", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_new_or_own_previous_output_is_fine(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    model, images = setup
    for out in (images.parent / "preds.jsonl", model / "model.preds.jsonl"):  # beside the model too
        for _ in range(2):  # the second run replaces its own earlier results
            assert (
                runtime_cli.main(["classify", str(model / "model.onnx"), str(images / "a.png"), "--output", str(out)])
                == 0
            )
        assert len(out.read_text().splitlines()) == 1
