"""No file from outside the model's folder goes into any step: external data that is a
link leaving the folder, lies under a symlinked folder, is an absolute path or climbs out
with `..` is refused in one line by export fp16, calibration, ONNX Runtime (classify,
parity), export triton and the engine step (a real TensorRT-RTX build), before anything
reads it. runtime.core.onnx_files.external_data_files is the one rule they all call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest
from onnx import helper, numpy_helper

from runtime.core.errors import UserError
from runtime.core.io import sha256_file
from runtime.core.onnx_files import external_data_files
from tests.calibration.conftest import copy_export
from tests.conftest import run_cli

DATA = "model.onnx.data"
FAULTS = ["symlinked file", "symlinked folder", "absolute path", "dot-dot"]
SAYS = {
    "symlinked file": "outside the model's folder",
    "symlinked folder": "outside the model's folder",
    "absolute path": "an absolute path",
    "dot-dot": "climbs out with '..'",
}


def _relocate(onnx_path: Path, location: str) -> None:
    model = onnx.load(str(onnx_path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx_path.write_bytes(model.SerializeToString())


def _faulty_export(digits_export: Path, root: Path, fault: str) -> Path:
    """build/ holding a model.onnx whose weights lie in outside/, reached as `fault` says;
    model.json records the new graph's hash, so only the rule can stop it."""
    folder = root / "build"
    onnx_path = copy_export(digits_export, folder)
    model = onnx.load(str(onnx_path))
    onnx.save(model, str(onnx_path), save_as_external_data=True, location=DATA, size_threshold=0)
    outside = root / "outside"
    outside.mkdir()
    shutil.move(folder / DATA, outside / DATA)
    if fault == "symlinked file":
        os.symlink(outside / DATA, folder / DATA)
    elif fault == "symlinked folder":
        os.symlink(outside, folder / "weights")
        _relocate(onnx_path, f"weights/{DATA}")
    elif fault == "absolute path":
        _relocate(onnx_path, str(outside / DATA))
    else:
        _relocate(onnx_path, f"../outside/{DATA}")
    manifest = json.loads((folder / "model.json").read_text())
    manifest["onnx_sha256"] = sha256_file(onnx_path)
    (folder / "model.json").write_text(json.dumps(manifest))
    return onnx_path


def _refused(res: subprocess.CompletedProcess[str], fault: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    last = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and len(last) == 1, res.stderr
    assert last[0].startswith("error: ") and SAYS[fault] in last[0] and "model.onnx" in last[0]


def _outputs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} - {"model.onnx", "model.json", "golden.npz", "weights", DATA}


STEPS = {
    "export fp16": lambda onnx_path, tmp, images: ("export", "fp16", str(onnx_path)),
    "calibration": lambda onnx_path, tmp, images: ("calibration", str(onnx_path), "--data", "digits", "--limit", "16"),
    "classify": lambda onnx_path, tmp, images: ("runtime", "classify", str(onnx_path), str(images)),
    "parity": lambda onnx_path, tmp, images: ("runtime", "parity", str(onnx_path)),
    "export triton": lambda onnx_path, tmp, images: (
        "export", "triton", str(onnx_path.parent), "--out", str(tmp / "repo"), "--precision", "fp32"
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", list(STEPS))
def test_every_step_refuses_external_data_from_outside(
    digits_export: Path, digit_images: Path, tmp_path: Path, step: str, fault: str
) -> None:
    onnx_path = _faulty_export(digits_export, tmp_path, fault)
    res = run_cli(*STEPS[step](onnx_path, tmp_path, digit_images))
    _refused(res, fault)
    assert _outputs(onnx_path.parent) == set()
    assert not (tmp_path / "repo" / "convmixer_digits").exists()


@pytest.mark.rtx
@pytest.mark.parametrize("fault", FAULTS)
def test_the_engine_step_refuses_it_before_tensorrt_parses(digits_export: Path, tmp_path: Path, fault: str) -> None:
    pytest.importorskip("tensorrt_rtx")
    onnx_path = _faulty_export(digits_export, tmp_path, fault)
    res = run_cli("export", "engine", str(onnx_path), "--flavour", "tensorrt-rtx")
    _refused(res, fault)
    assert _outputs(onnx_path.parent) == set()


def test_links_that_stay_inside_the_folder_are_fine(digits_export: Path, tmp_path: Path) -> None:
    folder = tmp_path / "build"
    onnx_path = copy_export(digits_export, folder)
    onnx.save(onnx.load(str(onnx_path)), str(onnx_path), save_as_external_data=True, location=DATA, size_threshold=0)
    (folder / "w").mkdir()
    shutil.move(folder / DATA, folder / "w" / "real.data")
    os.symlink("w/real.data", folder / DATA)
    files = external_data_files(onnx_path)
    assert files and {f.path for f in files} == {(folder / "w" / "real.data").resolve()}


def test_tensors_outside_the_initializers_are_checked_too(tmp_path: Path) -> None:
    """A Constant node's tensor, inside a subgraph, is read from a file too."""
    value = numpy_helper.from_array(__import__("numpy").zeros(4, "float32"), "c")
    value.data_location = onnx.TensorProto.EXTERNAL
    value.ClearField("raw_data")
    entry = value.external_data.add()
    entry.key, entry.value = "location", "/etc/hostname"
    const = helper.make_node("Constant", [], ["y"], value=value)
    body = helper.make_graph([const], "body", [], [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])])
    node = helper.make_node("If", ["cond"], ["out"], then_branch=body, else_branch=body)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [4])],
    )
    path = tmp_path / "model.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(UserError, match=r"'c' are stored in '/etc/hostname', an absolute path"):
        external_data_files(path)
