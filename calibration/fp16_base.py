"""The FP16 base of the INT8 graph: everything not quantized computes in FP16.

A strongly typed TensorRT build runs each op in the type the graph gives it, and a
DequantizeLinear's output takes its scale's type. So the Q/DQ graph is made in FP32 by
ONNX Runtime's quantizer, then converted whole to FP16 by onnxconverter-common (the
converter `export fp16` uses): the Q/DQ scales become FP16, each DQ then feeds its
Conv/Gemm/Add in FP16, and BatchNorm, GELU, pooling and the residual adds follow.
QuantizeLinear and DequantizeLinear take FP16 scales from opset 19, so the graph is
moved to opset 19 first (TensorRT 10's parser reads opsets 9 to 20). Graph inputs and
outputs stay float32. Layers kept with `--keep-fp32` get casts around them instead.
"""

from __future__ import annotations

import logging
from typing import Any

from export.graph_edit import to_float16
from runtime.core.errors import UserError, require

log = logging.getLogger(__name__)

FP16_QDQ_OPSET = 19


def _default_opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def to_fp16_base(model: Any, keep_fp32: list[str]) -> Any:
    """The Q/DQ `model` with every float tensor in FP16 but its I/O and `keep_fp32` nodes."""
    onnx = require("onnx", "pip install onnx")
    if _default_opset(model) < FP16_QDQ_OPSET:
        try:
            model = onnx.version_converter.convert_version(model, FP16_QDQ_OPSET)
        except (RuntimeError, ValueError) as exc:
            raise UserError(
                f"cannot move the INT8 graph to opset {FP16_QDQ_OPSET} for FP16 Q/DQ scales ({exc})"
            ) from None
    return to_float16(model, keep_fp32)
