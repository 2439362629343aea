"""What a deserialised engine says about itself, checked against what this runtime runs:
its validity here (TensorRT-RTX), its I/O tensors and its optimization profiles."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ...artifacts import MANIFEST_NAME
from ...errors import UserError
from ...manifest import FLOAT_INPUT, INPUT_NAME, OUTPUT_NAME, UINT8_INPUT, InputSpec
from ..profiles import ProfileSet

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

FLOAT32_BYTES = 4
# TensorRT's I/O data types this project's graphs use, by name: (numpy dtype, bytes).
IO_TYPES = {"FLOAT": (FLOAT_INPUT, 4), "UINT8": (UINT8_INPUT, 1)}


@dataclass(frozen=True)
class EngineIO:
    """The engine's input spec, the bytes of one input element, and its class count."""

    input_spec: InputSpec
    in_itemsize: int
    num_classes: int


@dataclass(frozen=True)
class EngineRun:
    """What the copy/execute schedule needs to know of the activated engine."""

    model_file: Path
    profiles: ProfileSet
    num_classes: int
    in_itemsize: int  # bytes per input element
    cuda_graph: bool  # replay each (profile, shape, slot) from a captured CUDA graph
    dims: Callable[[list[int]], Any]  # the library's Dims constructor


def check_validity(model_file: Path, backend: str, trt_module: ModuleType, validity: Any, diagnostics: Any) -> None:
    """TensorRT-RTX's own pre-flight check of a serialised engine."""
    name = getattr(validity, "name", str(validity))
    if name == "VALID":
        return
    flags = int(diagnostics)
    enum = getattr(trt_module, "EngineInvalidityDiagnostics", None)
    reasons = [m for m, v in (enum.__members__.items() if enum else []) if flags & int(v)]
    if not reasons:
        reasons = ["no reason given; the library's log above says why"]
    if name == "SUBOPTIMAL":
        log.warning("%s: the library says this engine is suboptimal here (%s)", model_file, ", ".join(reasons))
        return
    raise UserError(f"{model_file}: {backend} says this engine cannot run here: {', '.join(reasons)}")


def check_io(
    model_file: Path,
    engine: trt.ICudaEngine,
    trt_module: ModuleType,
    manifest_spec: InputSpec | None,
    sidecar_spec: InputSpec | None,
) -> EngineIO:
    """The engine's I/O tensors, checked by name and type against model.json and the sidecar."""
    tm = trt_module.TensorIOMode
    names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
    if names != {INPUT_NAME, OUTPUT_NAME}:
        raise UserError(f"{model_file}: I/O tensors {sorted(names)} | expected ['{INPUT_NAME}', '{OUTPUT_NAME}']")
    for name, mode in ((INPUT_NAME, tm.INPUT), (OUTPUT_NAME, tm.OUTPUT)):
        if engine.get_tensor_mode(name) != mode:
            raise UserError(f"{model_file}: tensor '{name}' is not an engine {mode.name.lower()}")
    in_type = engine.get_tensor_dtype(INPUT_NAME).name
    out_type = engine.get_tensor_dtype(OUTPUT_NAME).name
    if in_type not in IO_TYPES:
        raise UserError(f"{model_file}: input '{INPUT_NAME}' is {in_type} | expected FLOAT or UINT8")
    if out_type != "FLOAT":
        raise UserError(f"{model_file}: output '{OUTPUT_NAME}' is {out_type} | expected FLOAT")
    dtype, itemsize = IO_TYPES[in_type]
    for where, spec in ((MANIFEST_NAME, manifest_spec), ("its sidecar", sidecar_spec)):
        if spec is not None and spec.dtype != dtype:
            raise UserError(
                f"{model_file}: input '{INPUT_NAME}' is {in_type} ({dtype}), but {where} says {spec.dtype}; "
                "the engine and its model files come from different exports"
            )
    num_classes = int(engine.get_tensor_shape(OUTPUT_NAME)[-1])
    if num_classes <= 0:
        raise UserError(f"{model_file}: output '{OUTPUT_NAME}' has no static class dimension")
    return EngineIO(InputSpec(dtype), itemsize, num_classes)


def profile_shapes(
    model_file: Path, engine: trt.ICudaEngine, index: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    shapes = engine.get_tensor_profile_shape(INPUT_NAME, index)
    if len(shapes) != 3:
        raise UserError(f"{model_file}: profile {index} has no shapes for input '{INPUT_NAME}'")
    # trt.Dims is indexable but not iterable in the 10.x stubs
    lo, opt, hi = (tuple(int(d[i]) for i in range(len(d))) for d in shapes)
    return lo, opt, hi
