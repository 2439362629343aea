"""`runtime.load`: the runner for a model file, picked by its extension or by name."""

from __future__ import annotations

from pathlib import Path

from .artifacts import model_path
from .errors import UserError
from .runner import Runner

BACKENDS = ("tensorrt", "onnxruntime")


def load(
    model_file: str | Path,
    backend: str | None = None,
    *,
    cuda_graph: bool = False,
    allow_missing_sidecar: bool = False,
    device: int = 0,
) -> Runner:
    """A runner for `model_file`: .engine -> TensorRT, .onnx -> ONNX Runtime.

    The runner is inactive until entered (`with runtime.load(path) as runner:`).
    TensorRT only: `cuda_graph` replays each input shape from a captured CUDA graph;
    `allow_missing_sidecar` runs an engine with no .engine.json (built by trtexec), with
    a warning; `device` picks the CUDA device. A symlinked `model_file` is followed
    (runtime.artifacts.model_path).
    """
    path = model_path(model_file)  # a link is followed: its companion files are the target's
    if backend is None:
        if path.suffix == ".engine":
            backend = "tensorrt"
        elif path.suffix == ".onnx":
            backend = "onnxruntime"
        else:
            raise UserError(f"{path}: expected an .engine (TensorRT) or .onnx (ONNX Runtime) file")
    if backend == "onnxruntime":
        asked = [
            f
            for f, v in (("--cuda-graph", cuda_graph), ("--no-sidecar", allow_missing_sidecar), ("device", device))
            if v
        ]
        if asked:
            raise UserError(f"{path}: {asked[0]} applies to TensorRT engines, not to ONNX Runtime")
        from .backends.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path)
    if backend == "tensorrt":
        if path.suffix != ".engine":
            raise UserError(
                f"{path}: the tensorrt backend runs .engine files; build one with `python -m export engine`"
            )
        from .backends.tensorrt import TensorRTOptions, TensorRTRunner

        return TensorRTRunner(path, TensorRTOptions(cuda_graph, allow_missing_sidecar, device))
    raise UserError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
