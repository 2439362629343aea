"""`runtime.load`: the runner for a model file, picked by its extension or by name."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

from .artifacts import FP16, INT8, calibration_path, cpu_int8_for, is_cpu_int8, precision_from_name
from .errors import UserError
from .io import read_json
from .runner import Runner

log = logging.getLogger(__name__)

BACKENDS = ("tensorrt", "onnxruntime")
CPU_PROVIDER = "CPUExecutionProvider"
X86_MACHINES = ("x86_64", "amd64", "i386", "i686")


def _recorded_cpu_graph(int8_graph: Path) -> Path | None:
    """The CPU INT8 graph beside `int8_graph`, if it is there and calibration.json records it."""
    cpu = cpu_int8_for(int8_graph)
    report = calibration_path(int8_graph)
    if not (cpu.is_file() and report.is_file()):
        return None
    try:
        data = read_json(report)
    except UserError:
        return None
    return cpu if isinstance(data, dict) and data.get("cpu_int8_onnx_sha256") else None


def onnxruntime_graph(path: Path, providers: list[str], cpu_graph: bool = True) -> Path:
    """The graph ONNX Runtime runs for `path` on `providers`; the one place that chooses.

    On the CPU, model.int8.onnx (TensorRT's layout, slower than FP32 there) gives way to
    the CPU INT8 graph made by the same calibration, when calibration.json records it (and
    `cpu_graph`); an INFO line says so. Any other file runs as given; FP16 on an x86 CPU
    gets a warning."""
    on_cpu = bool(providers) and providers[0] == CPU_PROVIDER
    precision = precision_from_name(path.name)
    if not on_cpu or path.suffix != ".onnx":
        return path
    if cpu_graph and precision == INT8 and not is_cpu_int8(path):
        cpu = _recorded_cpu_graph(path)
        if cpu is not None:
            log.info("%s: running %s instead, its INT8 graph for ONNX Runtime's CPU (same calibration)", path, cpu.name)
            return cpu
    if precision == FP16 and platform.machine().lower() in X86_MACHINES:
        log.warning(
            "%s: FP16 on ONNX Runtime's x86 CPU runs slower than FP32 (MLAS has FP16 convolutions only on ARM); "
            "on this CPU prefer the FP32 or INT8 graph",
            path.name,
        )
    return path


def load(
    model_file: str | Path,
    backend: str | None = None,
    *,
    cuda_graph: bool = False,
    allow_missing_sidecar: bool = False,
    device: int = 0,
    cpu_graph: bool = True,
) -> Runner:
    """A runner for `model_file`: .engine -> TensorRT, .onnx -> ONNX Runtime (on the CPU,
    model.int8.onnx runs as its CPU INT8 graph when there: see onnxruntime_graph).

    The runner is inactive until entered (`with runtime.load(path) as runner:`).
    TensorRT only: `cuda_graph` replays each input shape from a captured CUDA graph;
    `allow_missing_sidecar` runs an engine with no .engine.json (built by trtexec), with
    a warning; `device` picks the CUDA device. ONNX Runtime only: `cpu_graph=False` runs
    model.int8.onnx itself on the CPU (TensorRT's layout), not its CPU INT8 graph.
    """
    path = Path(model_file)
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
        from .backends.onnxruntime import OnnxRuntimeRunner, default_providers

        return OnnxRuntimeRunner(onnxruntime_graph(path, default_providers(), cpu_graph))
    if backend == "tensorrt":
        if path.suffix != ".engine":
            raise UserError(
                f"{path}: the tensorrt backend runs .engine files; build one with `python -m export engine`"
            )
        from .backends.tensorrt import TensorRTOptions, TensorRTRunner

        return TensorRTRunner(path, TensorRTOptions(cuda_graph, allow_missing_sidecar, device))
    raise UserError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
