"""model.onnx + activation ranges -> model.int8.onnx: explicit, symmetric INT8 Q/DQ on an FP16 base.

ONNX Runtime's `quantize_static` inserts the Q/DQ nodes, reading the ranges that
calibration.ranges wrote to its calibration cache; this module only chooses its
settings to fit TensorRT (int8, zero point 0, per-channel weights, per-tensor
activations, float biases, inputs of Conv/Gemm and of the skip-add quantized, no
outputs), then makes the unquantized rest FP16 (calibration.fp16_base). The same
ranges serve every choice of quantized layers, which is what mixed precision needs.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runtime.core.errors import UserError, require

from .fp16_base import to_fp16_base
from .qdq import check_tensorrt_rules, drop_unused_initializers, only_residual_add_inputs, skip_adds
from .staging import intermediate_errors, stage

log = logging.getLogger(__name__)

QUANTIZED_OPS = ["Conv", "Gemm", "Add"]
# Bump when the Q/DQ placement changes, so existing INT8 graphs count as stale.
QDQ_SCHEME = (
    "trt-explicit-v2: conv/gemm inputs, skip-add residual input, per-channel int8 weights, float bias, "
    "fp16 base (opset 19), float32 I/O"
)


def quantizable_layers(model: Any) -> list[str]:
    """Nodes that can take Q/DQ, in graph order: every Conv and Gemm, and the skip-adds."""
    adds = set(skip_adds(model))
    return [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm") or n.name in adds]


def refuse_no_int8(quantize: list[str], why: str) -> None:
    """An "INT8" graph with no INT8 layer is an FP16 graph under a misleading name: refuse it."""
    if not quantize:
        raise UserError(
            f"{why}: no layer would be INT8; quantize some (fewer patterns), or build the FP16 engine "
            "from model.fp16.onnx (python -m export fp16)"
        )


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


@contextlib.contextmanager
def _without_root_message(flt: logging.Filter) -> Iterator[None]:
    root = logging.getLogger()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)


def _calibration_method(ranges_cache: Path) -> Any:
    calib = require("onnxruntime.quantization.calibrate", "pip install onnxruntime")
    return calib.load_tensors_data(ranges_cache).calibration_method


def _quantize_static(
    q: Any, onnx_path: Path, qdq_path: Path, ranges_cache: Path, quantize: list[str], everything: list[str]
) -> None:
    q.quantize_static(
        str(onnx_path),
        str(qdq_path),
        None,
        quant_format=q.QuantFormat.QDQ,
        activation_type=q.QuantType.QInt8,
        weight_type=q.QuantType.QInt8,
        per_channel=True,
        calibrate_method=_calibration_method(ranges_cache),
        op_types_to_quantize=QUANTIZED_OPS,
        nodes_to_quantize=quantize,  # an empty list would mean "all"; write_int8 never passes one
        nodes_to_exclude=[n for n in everything if n not in quantize],
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "QuantizeBias": False,  # TensorRT dequantizes int8 only; biases stay float
            "OpTypesToExcludeOutputQuantization": QUANTIZED_OPS,
        },
        calibration_cache_path=str(ranges_cache),
    )


def write_int8(
    onnx_path: Path, out: Path, ranges_cache: Path, quantize: list[str], keep_fp32: list[str]
) -> dict[str, Any]:
    """Write the Q/DQ graph with `quantize` layers in INT8 (the rest FP16, `keep_fp32` FP32) to `out`.

    Returns the Q/DQ node counts. With no layer to quantize the result is the plain FP16
    graph, which is what mixed precision compares against."""
    onnx = require("onnx", "pip install onnx")
    q = require("onnxruntime.quantization", "pip install onnxruntime")
    model = onnx.load(str(onnx_path))
    if quantize:
        everything = quantizable_layers(model)
        with (
            tempfile.TemporaryDirectory(prefix="int8.") as tmp,
            _without_root_message(_DropMessage("pre-processing before quantization")),
        ):
            qdq_path = Path(tmp) / "qdq.onnx"
            # quantize_static writes beside the model it gets: give it a link inside `tmp`.
            staged = stage(onnx_path, Path(tmp))
            with intermediate_errors(Path(tmp)):
                _quantize_static(q, staged, qdq_path, ranges_cache, quantize, everything)
                model = onnx.load(str(qdq_path))
        only_residual_add_inputs(model)
    check_tensorrt_rules(model)
    model = to_fp16_base(model, keep_fp32)
    drop_unused_initializers(model)
    counts = check_tensorrt_rules(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    log.debug("INT8 graph %s: %s", out, counts)
    return counts
