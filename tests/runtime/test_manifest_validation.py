"""A model.json with a field the runtime cannot use is refused on one line naming the field and the file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runtime.core.errors import UserError
from runtime.core.manifest import load_manifest
from tests.conftest import run_cli


def _set(*keys: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        for key in keys[:-1]:
            data = data.setdefault(key, {})
        data[keys[-1]] = value

    return edit


BAD: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("preprocessing.input_size", _set("preprocessing", "input_size", value=0)),
    ("preprocessing.input_size", _set("preprocessing", "input_size", value=-8)),
    ("preprocessing.input_size", _set("preprocessing", "input_size", value=10**9)),
    ("preprocessing.input_size", _set("preprocessing", "input_size", value=8.5)),
    ("preprocessing.input_size", _set("preprocessing", "input_size", value="224")),
    ("preprocessing.crop_pct", _set("preprocessing", "crop_pct", value=0)),
    ("preprocessing.crop_pct", _set("preprocessing", "crop_pct", value=float("nan"))),
    ("preprocessing.interpolation", _set("preprocessing", "interpolation", value="cubic-ish")),
    ("preprocessing.mean", _set("preprocessing", "mean", value=[0.5, float("inf"), 0.5])),
    ("preprocessing.mean", _set("preprocessing", "mean", value=[0.5])),
    ("preprocessing.std", _set("preprocessing", "std", value=[float("nan"), 0.5, 0.5])),
    ("preprocessing.std", _set("preprocessing", "std", value=[0.5, 0.0, 0.5])),
    ("preprocessing.exif_transpose", _set("preprocessing", "exif_transpose", value="yes")),
    ("preprocessing", _set("preprocessing", value=None)),
    ("input.dtype", _set("input", value="NHWC")),
    ("input.dtype", _set("input", "dtype", value="float16")),
    ("input.layout", _set("input", "layout", value="NHWC")),  # the float input is NCHW
    ("arch.num_classes", _set("arch", "num_classes", value=0)),
    ("arch.patch_size", _set("arch", "patch_size", value=-1)),
    ("labels", _set("labels", value="cat")),
    ("labels", _set("labels", value=["one", "two"])),  # the digits model has 10 classes
    ("wnids", _set("wnids", value="n01440764")),
    ("wnids", _set("wnids", value=["n01440764", "n01443537"])),  # 10 classes
    ("onnx_sha256", _set("onnx_sha256", value="abc")),
    ("weights", _set("weights", value="random-init")),
    ("weights", _set("weights", value=None)),
    ("weights", _set("weights", value=["random-init"])),
    ("weights", _set("weights", "source", value=7)),
]


@pytest.fixture
def model_dir(digits_export: Path, tmp_path: Path) -> Path:
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)
    return tmp_path


def _edit(model_dir: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = model_dir / "model.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))  # NaN and Infinity as Python's json writes them


def test_the_fixture_manifest_is_valid(model_dir: Path) -> None:
    assert load_manifest(model_dir / "model.onnx").declared_classes == 10


@pytest.mark.parametrize(("field", "edit"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)])
def test_bad_field_is_named_with_the_file(model_dir: Path, field: str, edit: Callable[[dict[str, Any]], None]) -> None:
    _edit(model_dir, edit)
    with pytest.raises(UserError) as info:
        load_manifest(model_dir / "model.onnx")
    assert str(model_dir / "model.json") in str(info.value) and f" {field} " in str(info.value)


@pytest.mark.parametrize(
    "edit",
    [
        _set("preprocessing", "std", value=[float("nan")] * 3),
        _set("preprocessing", "input_size", value=0),
        _set("weights", value="random-init"),
    ],
    ids=["std-nan", "input-size-0", "weights-string"],
)
def test_classify_refuses_instead_of_nan_or_traceback(model_dir: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    _edit(model_dir, edit)
    Image.new("L", (8, 8), 100).save(model_dir / "x.png")
    res = run_cli("runtime", "classify", str(model_dir / "model.onnx"), str(model_dir / "x.png"))
    assert res.returncode == 2 and "nan%" not in res.stdout
    assert res.stderr.count("\n") == 1 and "model.json: " in res.stderr and " | expected" in res.stderr, res.stderr


@pytest.mark.parametrize("name", ["model.json", "model.fp32.engine.json", "model.fp32.layers.json"])
def test_json_nested_too_deeply_is_one_line(tmp_path: Path, name: str) -> None:
    from runtime.core.io import read_json

    path = tmp_path / name
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UserError, match="nested too deeply"):
        read_json(path)


def test_classify_refuses_a_deeply_nested_manifest(model_dir: Path) -> None:
    (model_dir / "model.json").write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    Image.new("L", (8, 8), 100).save(model_dir / "x.png")
    res = run_cli("runtime", "classify", str(model_dir / "model.onnx"), str(model_dir / "x.png"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "nested too deeply" in res.stderr, res.stderr
