"""`runtime.load`: the runner for a model file, picked by its extension or by name. A
TensorRT runner takes one TensorRTOptions (runtime.core.tensorrt_options), which every
caller (the command line, classify on Ray, parity) passes through unchanged."""

from __future__ import annotations

from pathlib import Path

from .artifacts import ENGINE_SUFFIX, ONNX_SUFFIX, model_path
from .errors import UserError
from .runner import Runner
from .tensorrt_options import TensorRTOptions

__all__ = ["BACKENDS", "ONNXRUNTIME", "TENSORRT", "TensorRTOptions", "backend_for", "load"]

TENSORRT, ONNXRUNTIME = "tensorrt", "onnxruntime"
BACKENDS = (TENSORRT, ONNXRUNTIME)


def backend_for(model_file: str | Path, backend: str | None = None) -> str:
    """`backend` if given, else the one a file's suffix means: .engine -> TensorRT, .onnx ->
    ONNX Runtime. The one place that maps a suffix to a backend."""
    if backend is not None:
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        return backend
    suffix = Path(model_file).suffix
    if suffix == ENGINE_SUFFIX:
        return TENSORRT
    if suffix == ONNX_SUFFIX:
        return ONNXRUNTIME
    raise UserError(f"{model_file}: expected an {ENGINE_SUFFIX} (TensorRT) or {ONNX_SUFFIX} (ONNX Runtime) file")


def load(
    model_file: str | Path, backend: str | None = None, options: TensorRTOptions | None = None, *, cpu_graph: bool = True
) -> Runner:
    """A runner for `model_file`: .engine -> TensorRT, .onnx -> ONNX Runtime (on the CPU,
    model.int8.onnx runs as its CPU INT8 graph when there: see onnxruntime.onnxruntime_graph).

    The runner is inactive until entered (`with runtime.load(path) as runner:`). `options`
    are the TensorRT runner's (TensorRTOptions); asking ONNX Runtime for one is an error.
    ONNX Runtime only: `cpu_graph=False` runs model.int8.onnx itself on the CPU (TensorRT's
    layout), not its CPU INT8 graph. A symlinked `model_file` is followed
    (runtime.core.artifacts.model_path).
    """
    path = model_path(model_file)  # a link is followed: its companion files are the target's
    backend = backend_for(path, backend)
    options = options or TensorRTOptions()
    if backend == ONNXRUNTIME:
        if options.asked():
            raise UserError(f"{path}: {options.asked()[0]} applies to TensorRT engines, not to ONNX Runtime")
        from .backends.onnxruntime import OnnxRuntimeRunner, default_providers, onnxruntime_graph

        return OnnxRuntimeRunner(onnxruntime_graph(path, default_providers(), cpu_graph))
    if path.suffix != ENGINE_SUFFIX:
        raise UserError(f"{path}: the tensorrt backend runs {ENGINE_SUFFIX} files; build one with `python -m export engine`")
    from .backends.tensorrt import TensorRTRunner

    return TensorRTRunner(path, options)
