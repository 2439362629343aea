"""ONNX Runtime backend: the default where TensorRT is absent (CPU here, CUDA where
onnxruntime-gpu is installed)."""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import FP16, INT8, ONNX_SUFFIX, calibration_path, cpu_int8_for, is_cpu_int8, precision_from_name
from ..errors import UserError, require
from ..io import read_json, sha256_file
from ..manifest import FLOAT_INPUT, INPUT_NAME, OUTPUT_NAME, UINT8_INPUT, InputSpec, find_manifest
from ..onnx_files import external_data_files
from ..runner import Runner

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
ORT_HINT = "pip install onnxruntime (or onnxruntime-gpu on a CUDA machine)"
# ONNX Runtime's element types for the two inputs this project's graphs take.
ORT_INPUT_TYPES = {"tensor(float)": FLOAT_INPUT, "tensor(uint8)": UINT8_INPUT}


CPU_PROVIDER = "CPUExecutionProvider"
X86_MACHINES = ("x86_64", "amd64", "i386", "i686")


def _recorded_cpu_graph(int8_graph: Path) -> Path | None:
    """The CPU INT8 graph beside `int8_graph` (which must be there too), if calibration.json
    records it; one whose bytes are not the ones recorded is refused, naming both hashes."""
    cpu = cpu_int8_for(int8_graph)
    report = calibration_path(int8_graph)
    if not (int8_graph.is_file() and cpu.is_file() and report.is_file()):
        return None
    try:
        data = read_json(report)
    except UserError:
        return None
    recorded = data.get("cpu_int8_onnx_sha256") if isinstance(data, dict) else None
    if not recorded:
        return None
    actual = sha256_file(cpu)
    if actual != recorded:
        raise UserError(
            f"{cpu}: sha256 {actual}, but {report} records the CPU INT8 graph it wrote as {recorded}; "
            f"recalibrate, or run {int8_graph.name} as given with --no-cpu-graph"
        )
    return cpu


def onnxruntime_graph(path: Path, providers: list[str], cpu_graph: bool = True) -> Path:
    """The graph ONNX Runtime runs for `path` on `providers`; the one place that chooses.

    On the CPU, model.int8.onnx (TensorRT's layout, slower than FP32 there) gives way to
    the CPU INT8 graph made by the same calibration, when calibration.json records it (and
    `cpu_graph`); an INFO line says so. Any other file runs as given; FP16 on an x86 CPU
    gets a warning."""
    on_cpu = bool(providers) and providers[0] == CPU_PROVIDER
    precision = precision_from_name(path.name)
    if not on_cpu or path.suffix != ONNX_SUFFIX:
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


def default_providers() -> list[str]:
    ort = require("onnxruntime", ORT_HINT)
    available = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in available]


def ort_errors() -> tuple[type[BaseException], ...]:
    """ONNX Runtime's own exception types (Fail, InvalidArgument, InvalidGraph, ...).

    Only these are turned into "ONNX Runtime refused it"; anything else is a bug in this
    project and keeps its traceback."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(
        v
        for v in vars(state).values()
        if isinstance(v, type) and issubclass(v, Exception) and v.__module__ == state.__name__
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OnnxRuntimeRunner(Runner):
    """InferenceSession.run is thread-safe, so one runner may serve several threads."""

    backend = "onnxruntime"

    def __init__(self, model_file: str | Path, providers: list[str] | None = None, threads: int = 0) -> None:
        super().__init__(model_file)
        self.providers = providers
        self.threads = threads
        self._session: Any = None
        self._errors: tuple[type[BaseException], ...] = ()

    def check_requirements(self) -> None:
        require("onnxruntime", ORT_HINT)
        super().check_requirements()

    def _activate(self) -> None:
        ort = require("onnxruntime", ORT_HINT)
        if not self.model_file.is_file():
            raise UserError(f"{self.model_file}: no such file")
        external_data_files(self.model_file)  # before ONNX Runtime reads any of them
        self._errors = ort_errors()
        options = ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: its errors reach the user in our one-line message
        if self.threads:
            options.intra_op_num_threads = self.threads
        providers = self.providers or default_providers()
        try:
            self._session = ort.InferenceSession(str(self.model_file), options, providers=providers)
        except self._errors as exc:
            raise UserError(f"{self.model_file}: ONNX Runtime cannot load it ({_first_line(exc)})") from None
        self._check_io()
        used = self._session.get_providers()
        if used[0] != providers[0]:
            log.warning(
                "ONNX Runtime asked for %s but runs on %s (is the GPU build's CUDA/TensorRT missing?)",
                providers[0],
                used[0],
            )
        else:
            log.debug("onnxruntime session on %s", ", ".join(used))

    def _check_io(self) -> None:
        inputs = self._session.get_inputs()
        names = [i.name for i in inputs]
        if names != [INPUT_NAME]:
            raise UserError(f"{self.model_file}: inputs {names} | expected ['{INPUT_NAME}']")
        outputs = [o.name for o in self._session.get_outputs()]
        if OUTPUT_NAME not in outputs:
            raise UserError(f"{self.model_file}: outputs {outputs} | expected an output named '{OUTPUT_NAME}'")
        dtype = ORT_INPUT_TYPES.get(inputs[0].type)
        if dtype is None:
            raise UserError(
                f"{self.model_file}: input '{INPUT_NAME}' is {inputs[0].type} | expected {' or '.join(ORT_INPUT_TYPES)}"
            )
        self.input_spec = InputSpec(dtype)
        manifest = find_manifest(self.model_file)
        if manifest is not None and manifest.input_spec.dtype != dtype:
            raise UserError(
                f"{self.model_file}: input '{INPUT_NAME}' is {dtype}, but {manifest.path.name} says "
                f"{manifest.input_spec.dtype}; the graph and model.json come from different exports"
            )

    def output_classes(self) -> int | None:
        shape = next(o.shape for o in self._session.get_outputs() if o.name == OUTPUT_NAME)
        width = shape[-1] if shape else None
        return width if isinstance(width, int) and width > 0 else None

    def _deactivate(self) -> None:
        self._session = None  # safe on a partly activated runner too

    def _infer(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images)
        try:
            (logits,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: images})
        except self._errors as exc:
            raise UserError(
                f"input '{INPUT_NAME}' | got shape {images.shape} | ONNX Runtime refused it ({_first_line(exc)})"
            ) from None
        return np.asarray(logits, dtype=np.float32)

    @property
    def session(self) -> Any:
        """The underlying InferenceSession (for benchmarks that call it directly)."""
        return self._session
