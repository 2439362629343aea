"""`--device` reaches both the runner and the GPU image pipeline (they were 0 whatever the
runner used), and benchmarks/gpu_pipeline.py loads its engine on the device it decodes on."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from runtime.app.cli.commands import _image_pipeline, _load_options
from runtime.app.cli.main import build_parser
from runtime.app.images import feed

ROOT = Path(__file__).resolve().parents[2]


def test_device_flag_reaches_the_runner_and_the_gpu_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["classify", "m.engine", "x.jpg", "--device", "1", "--decode", "gpu"])
    assert _load_options(args).device == 1
    made: dict[str, Any] = {}

    class Recorder:
        def __init__(self, transform: Any, batch: int, device_id: int = 0) -> None:
            made["device_id"] = device_id

    import runtime.app.images.gpu.pipeline as gp

    monkeypatch.setattr(feed, "choose", lambda mode, backend, device_id=0: "gpu")
    monkeypatch.setattr(gp, "DevicePipeline", Recorder)
    _image_pipeline(args, object(), 4, 0)  # type: ignore[arg-type]
    assert made == {"device_id": 1}


def test_device_flag_is_checked() -> None:
    from runtime.app.cli.options import OptionError

    with pytest.raises(OptionError, match="--device -1"):
        build_parser().parse_args(["classify", "m.engine", "x.jpg", "--device", "-1"])


def test_the_gpu_benchmark_loads_its_engine_on_its_device() -> None:
    tree = ast.parse((ROOT / "benchmarks" / "gpu_pipeline.py").read_text())
    loads = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
        and isinstance(node.func.value, ast.Name) and node.func.value.id == "runtime"
    ]
    def device_given(call: ast.Call) -> bool:  # load(..., options=TensorRTOptions(device=...))
        return any(isinstance(k, ast.keyword) and k.arg == "device" for o in call.keywords for k in ast.walk(o.value))

    assert loads and all(device_given(call) for call in loads)
