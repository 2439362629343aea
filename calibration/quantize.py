"""model.onnx -> model.int8.onnx: explicit, symmetric INT8 Q/DQ with ONNX Runtime's quantizer.

ONNX Runtime's `quantize_static` does the calibration maths (entropy, max or
percentile ranges) and the QDQ insertion; this module only chooses its settings to fit
TensorRT (int8, zero point 0, per-channel weights, per-tensor activations, float
biases, inputs of Conv/Gemm and of the skip-add quantized, no outputs) and streams the
calibration images in strides so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from runtime.errors import UserError, require
from runtime.manifest import INPUT_NAME

from .data import MIN_USABLE, DataSource, Sample
from .qdq import check_tensorrt_rules, only_residual_add_inputs, skip_adds

log = logging.getLogger(__name__)

METHODS = ("entropy", "max", "percentile")
QUANTIZED_OPS = ["Conv", "Gemm", "Add"]
# Bump when the Q/DQ placement changes, so existing INT8 graphs count as stale.
QDQ_SCHEME = "trt-explicit-v1: conv/gemm inputs, skip-add residual input, per-channel int8 weights, float bias"
BATCH = 16
STRIDE = 4  # batches per ONNX Runtime collect pass: bounds the activations held at once


def _reader(source: DataSource, samples: list[Sample], progress: tqdm) -> Any:
    ort_quant = require("onnxruntime.quantization", "pip install onnxruntime")

    class Reader(ort_quant.CalibrationDataReader):  # type: ignore[misc,name-defined]
        """Loads one batch per get_next(); ONNX Runtime calls set_range per stride."""

        def __init__(self) -> None:
            self.chunks = [samples[i : i + BATCH] for i in range(0, len(samples), BATCH)]
            self.used = 0
            self._pending: list[list[Sample]] = []

        def __len__(self) -> int:
            return len(self.chunks)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._pending = self.chunks[start_index:end_index]

        def get_next(self) -> dict[str, Any] | None:
            while self._pending:
                chunk = self._pending.pop(0)
                batch = next(source.batches(chunk, BATCH), None)
                progress.update(len(chunk))
                if batch is not None:
                    self.used += len(batch[0])
                    return {INPUT_NAME: batch[0]}
            return None

    return Reader()


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


def nodes_to_exclude(model: Any, patterns: list[str]) -> list[str]:
    """Resolve --exclude: 'depthwise' (grouped convs), an op type, or node-name globs."""
    chosen: list[str] = []
    for pattern in patterns:
        matched = []
        for node in model.graph.node:
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if (
                (pattern == "depthwise" and node.op_type == "Conv" and group > 1)
                or node.op_type == pattern
                or fnmatch.fnmatchcase(node.name, pattern)
            ):
                matched.append(node.name)
        if not matched:
            raise UserError(
                f"--exclude {pattern!r} matches no node (try 'depthwise', an op type like Gemm, or a node name)"
            )
        chosen.extend(m for m in matched if m not in chosen)
    return chosen


def _stride_for(n_batches: int) -> int:
    # ONNX Runtime needs the stride to divide the number of batches.
    return next(s for s in range(min(STRIDE, n_batches), 0, -1) if n_batches % s == 0)


def quantize_int8(onnx_path: Path, out: Path, source: DataSource, method: str, exclude: list[str]) -> dict[str, Any]:
    """Calibrate on `source.calibration` and write the Q/DQ graph to `out` (a temp path)."""
    onnx = require("onnx", "pip install onnx")
    q = require("onnxruntime.quantization", "pip install onnxruntime")
    if method not in METHODS:
        raise UserError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    model = onnx.load(str(onnx_path))
    excluded = nodes_to_exclude(model, exclude)
    weighted = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    chosen = [name for name in weighted + skip_adds(model) if name not in excluded]
    calib_method = {
        "entropy": q.CalibrationMethod.Entropy,
        "max": q.CalibrationMethod.MinMax,
        "percentile": q.CalibrationMethod.Percentile,
    }[method]
    quiet = io.StringIO()  # ONNX Runtime's calibrators print() their progress; ours is the bar
    ort_root_warning = _DropMessage("pre-processing before quantization")
    with (
        tqdm(total=len(source.calibration), desc=f"calibrating ({method})", unit="img", disable=None) as progress,
        contextlib.redirect_stdout(quiet),
        _without_root_message(ort_root_warning),
    ):
        reader = _reader(source, source.calibration, progress)
        q.quantize_static(
            str(onnx_path),
            str(out),
            reader,
            quant_format=q.QuantFormat.QDQ,
            activation_type=q.QuantType.QInt8,
            weight_type=q.QuantType.QInt8,
            per_channel=True,
            calibrate_method=calib_method,
            op_types_to_quantize=QUANTIZED_OPS,
            nodes_to_quantize=chosen,
            nodes_to_exclude=excluded,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,  # TensorRT dequantizes int8 only; biases stay float
                "OpTypesToExcludeOutputQuantization": QUANTIZED_OPS,
                "CalibStridedMinMax": _stride_for(len(reader)),
                "CalibTensorRangeSymmetric": True,
            },
        )
    log.debug("onnxruntime calibrator output:\n%s", quiet.getvalue())
    if reader.used < MIN_USABLE:
        raise UserError(
            f"only {reader.used} usable calibration images ({len(source.skipped)} skipped); need at least {MIN_USABLE}"
        )
    qmodel = onnx.load(str(out))
    removed = only_residual_add_inputs(qmodel)
    counts = check_tensorrt_rules(qmodel)
    onnx.checker.check_model(qmodel)
    onnx.save(qmodel, str(out))
    log.info("INT8 graph: %s; branch-input Q/DQ removed from %d skip-adds", counts, removed)
    return {"images_used": reader.used, "excluded_nodes": excluded, "qdq": counts, "skip_adds": removed}
