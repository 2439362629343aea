"""Where an engine is written by default.

The engine build options moved to export/engine_options/ (one table: flag, checks, config
call, trtexec argument and sidecar field per option) and optimization profiles to
export/shapes.py; this module keeps `engine_path_for` until it joins runtime's artifact names.
"""

from __future__ import annotations

from pathlib import Path


def engine_path_for(onnx_path: Path) -> Path:
    """model.fp16.onnx -> model.fp16.engine; the FP32 model.onnx -> model.fp32.engine."""
    from runtime.parity import precision_of

    precision = precision_of(onnx_path.name)
    base = onnx_path.name[: -len(".onnx")] if onnx_path.name.endswith(".onnx") else onnx_path.name
    if base.endswith(f".{precision}"):
        base = base[: -len(precision) - 1]
    return onnx_path.with_name(f"{base}.{precision}.engine")
