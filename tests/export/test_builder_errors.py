"""A build the builder complained about is a failed build; absurd shapes never reach it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import export.shapes
from export.engine import _serialize, build_engine
from export.engine_options import EngineOptions
from export.shapes import Profile
from export.trt.log import BuildLog
from runtime.core.errors import UserError
from tests.calibration.conftest import copy_export
from tests.conftest import run_cli

ABSURD = [
    "1x3x32x32:1x3x32x32:99999999999x3x32x32",  # batch
    "1x3x32x32:1x3x32x32:1x3x99999999999x32",  # height
    "1x3x32x32:1x3x32x32:1x3x32x99999999999",  # width
    "1x3x32x32:1x3x32x32:65536x3x128x128",  # each number plausible, the volume not
]


@pytest.mark.parametrize("spec", ABSURD)
def test_absurd_shapes_are_refused_before_building(spec: str) -> None:
    with pytest.raises(UserError, match="elements; an input holds at most"):
        Profile.parse(spec).validate(patch_size=2)


def test_absurd_shapes_are_one_line_on_the_command_line(digits_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.engine"
    res = run_cli("export", "engine", str(digits_export / "model.onnx"), "--shapes", ABSURD[1], "--out", str(out))
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: --shapes")
    assert not out.exists()


class _Builder:
    """Returns an engine whatever was logged, as TensorRT-RTX does after some errors."""

    def build_serialized_network(self, network: Any, config: Any) -> bytes:
        return b"engine"


def test_an_engine_built_despite_a_logged_error_is_refused() -> None:
    record = BuildLog(errors=["Profile kMAX values are not self-consistent. images: tensor volume exceeds"])
    with pytest.raises(UserError, match="failed to build model.fp32.engine: Profile kMAX"):
        _serialize("tensorrt-rtx", _Builder(), None, None, record, "model.fp32.engine")  # type: ignore[arg-type]


@pytest.mark.rtx
def test_rtx_profile_warning_fails_the_build(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real builder's "not self-consistent" warning, with the up-front check out of the way."""
    monkeypatch.setattr(export.shapes, "MAX_INPUT_ELEMENTS", 1 << 62)
    onnx_path = copy_export(digits_export, tmp_path / "build")
    options = EngineOptions(profiles=[Profile.parse(ABSURD[1])], flavour="tensorrt-rtx")
    with pytest.raises(UserError, match="not self-consistent"):
        build_engine(onnx_path, options)
    assert not list(onnx_path.parent.glob("*.engine*"))
