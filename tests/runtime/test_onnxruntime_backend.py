"""The ONNX Runtime runner's errors: its own failures are one line, bugs keep their traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import runtime
from runtime.core.errors import UserError
from tests.fakes.fake_tensorrt import copy_model_dir


def test_a_renamed_output_is_reported_as_an_output_problem(digits_export: Path, tmp_path: Path) -> None:
    import onnx

    d = copy_model_dir(digits_export, tmp_path / "m")
    model = onnx.load(d / "model.onnx")
    old = model.graph.output[0].name
    model.graph.output[0].name = "scores"
    for node in model.graph.node:
        node.output[:] = ["scores" if o == old else o for o in node.output]
    onnx.save(model, d / "model.onnx")
    with pytest.raises(UserError, match=r"outputs \['scores'\] \| expected an output named 'logits'"):
        runtime.load(d / "model.onnx").activate()


def test_onnx_runtime_failures_are_one_line_and_bugs_are_not_hidden(
    digits_export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with runtime.load(digits_export / "model.onnx") as runner:
        with pytest.raises(UserError, match=r"got shape \(1, 3, 1, 1\) \| ONNX Runtime refused it"):
            runner.infer(np.zeros((1, 3, 1, 1), np.float32))  # smaller than one patch: ORT's own error

        def broken(*args: object) -> None:
            raise KeyError("a bug in this project")

        monkeypatch.setattr(runner.session, "run", broken)
        with pytest.raises(KeyError, match="a bug in this project"):
            runner.infer(np.zeros((1, 3, 32, 32), np.float32))


def test_a_file_that_is_not_onnx_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(UserError, match="ONNX Runtime cannot load it"):
        runtime.load(tmp_path / "model.onnx").activate()
