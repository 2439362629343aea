"""Outputs never clobber inputs: refused before any work, naming both paths."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from export.engine import build_engine
from export.engine_options import EngineOptions
from export.fp16 import convert_fp16
from export.outputs import shadowed_package
from export.triton import write_repository
from runtime.core.errors import UserError
from tests.calibration.conftest import copy_export
from tests.conftest import run_cli


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def build(digits_export: Path, tmp_path: Path) -> Path:
    return copy_export(digits_export, tmp_path / "build").parent


@pytest.mark.parametrize(
    "out",
    [
        "model.onnx",  # the source graph
        "model.json",  # the manifest
        "golden.npz",
        "model",  # its sidecar would be model.json
        ".",  # a folder
    ],
)
def test_engine_out_that_is_an_input_or_artifact_is_refused_before_building(build: Path, out: str) -> None:
    before = _digest(build)
    with pytest.raises(UserError, match="--out|sidecar|folder"):
        build_engine(build / "model.onnx", EngineOptions(profiles=[], flavour="tensorrt-rtx"), build / out)
    assert _digest(build) == before


def test_engine_out_clash_is_one_line_on_the_command_line(build: Path) -> None:
    before = _digest(build)
    res = run_cli(
        "export", "engine", str(build / "model.onnx"), "--flavour", "tensorrt-rtx", "--out", str(build / "model.json")
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: --out {build / 'model.json'} would overwrite {build / 'model.json'}, an input of this step; "
        "choose another path"
    ]
    assert _digest(build) == before


@pytest.mark.parametrize("out", ["model.onnx", "model.json", "golden.npz", "model.int8.onnx"])
def test_fp16_out_that_is_an_artifact_is_refused(build: Path, out: str) -> None:
    before = _digest(build)
    with pytest.raises(UserError, match="would overwrite"):
        convert_fp16(build / "model.onnx", build / out)
    assert _digest(build) == before


def test_triton_repository_that_would_replace_the_build_folder_is_refused(build: Path) -> None:
    before = _digest(build)
    with pytest.raises(UserError, match="would replace"):
        write_repository(build, build.parent, name=build.name)
    assert _digest(build) == before


@pytest.mark.parametrize("name", ["triton", "json", "numpy"])
def test_triton_folder_that_shadows_a_package_is_refused(
    build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"hides the '{name}' package"):
        write_repository(build, Path(name))
    assert not (tmp_path / name).exists()


def test_a_plain_folder_name_shadows_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shadowed_package(Path("model_repository")) is None
    assert shadowed_package(tmp_path / "deep" / "triton") is None  # not a folder Python looks in


def test_fp16_out_that_is_a_hard_link_to_an_artifact_is_refused(build: Path, tmp_path: Path) -> None:
    """The same file under another name is the same file: classify and export share one test."""
    link = tmp_path / "elsewhere.onnx"
    os.link(build / "model.json", link)
    before = _digest(build)
    with pytest.raises(UserError, match="would overwrite .*model.json"):
        convert_fp16(build / "model.onnx", link)
    assert _digest(build) == before
