"""The graph's output width and model.json's classes must agree: every command refuses a
7-class graph under a 10-class model.json (hash updated) on one line, from the one check
that runs as a runner activates (runtime.core.runner.Runner._check_classes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from PIL import Image

from runtime.core.io import sha256_file
from tests.calibration.conftest import copy_export
from tests.conftest import run_cli


def _seven_classes(onnx_path: Path) -> None:
    """Cut `logits` to its first 7 classes (a Slice after the last layer), and record the
    new graph's hash in model.json, so only the class counts disagree."""
    model = onnx.load(str(onnx_path))
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["logits_full" if o == "logits" else o for o in node.output]
    graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.array([0], np.int64), "cut_start"),
            onnx.numpy_helper.from_array(np.array([7], np.int64), "cut_end"),
            onnx.numpy_helper.from_array(np.array([1], np.int64), "cut_axis"),
        ]
    )
    graph.node.append(helper.make_node("Slice", ["logits_full", "cut_start", "cut_end", "cut_axis"], ["logits"]))
    graph.output[0].type.tensor_type.shape.dim[1].dim_value = 7
    onnx.save(model, str(onnx_path))
    manifest_path = onnx_path.parent / "model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["onnx_sha256"] = sha256_file(onnx_path)
    manifest_path.write_text(json.dumps(manifest))


@pytest.fixture
def seven(digits_export: Path, tmp_path: Path) -> Path:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    _seven_classes(onnx_path)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16), 60 * i, np.uint8)).save(images / f"{i}.png")
    return onnx_path


@pytest.mark.parametrize(
    "command",
    [
        ["runtime", "classify", "{model}", "{images}", "--topk", "10"],
        ["runtime", "parity", "{model}"],
        ["runtime", "bench", "{model}", "--batch", "1", "--seconds", "0.1"],
        ["runtime", "evaluate", "{model}", "--data", "digits"],
        ["calibration", "{model}", "--data", "digits", "--limit", "16"],
    ],
    ids=["classify", "parity", "bench", "evaluate", "calibration"],
)
def test_every_command_refuses_a_graph_with_another_class_count(seven: Path, command: list[str]) -> None:
    args = [a.format(model=seven, images=seven.parent.parent / "images") for a in command]
    res = run_cli(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        f"error: {seven}: its output 'logits' has 7 classes, but {seven.parent / 'model.json'} says 10; "
        "the graph and model.json come from different exports"
    )
    assert sorted(p.name for p in seven.parent.iterdir()) == ["golden.npz", "model.json", "model.onnx"]
