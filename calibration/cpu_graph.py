"""The INT8 graph for ONNX Runtime's CPU: the same activation ranges, laid out for MLAS.

TensorRT's layout (symmetric int8, Q/DQ on inputs only) runs slower than FP32 on ONNX
Runtime's CPU: a convolution runs in integer only when DQ -> Conv -> Q fuses into
QLinearConv, and MLAS's x86 kernels take uint8 activations. So this graph is ONNX
Runtime's own CPU recipe, made by its `quantize_static` (QDQ format): uint8 asymmetric
activations, int8 symmetric per-channel weights, int32 biases, Q/DQ on the inputs and
outputs of every Conv, Gemm, Relu, skip-add and GELU Mul/Add; the logits stay float.

Before quantization each BatchNormalization (which in ConvMixer follows the activation, so
cannot fold into the convolution) is rewritten exactly as a depthwise 1x1 Conv: weight =
gamma / sqrt(var + eps), bias = beta - mean * weight. Quantized, its per-channel int8
weight holds each channel's scale exactly and the bias is int32, where a Mul + Add would
quantize all the scales and shifts with one per-tensor uint8 scale (on the digits set with
outliers: 98.05% top-1 against 98.33%). After a ReLU whose channel scales are all positive
the scale is folded into the convolution instead (FOLD_RELU; relu(a x) = a relu(x) for
a > 0; per-channel weights make the fold free) and only an Add of the shift remains: on
convmixer_768_32 that ran faster at batch 4 in an interleaved run (README). Its shift
constant is quantized per tensor (uint8): an error of at most half a step of the Add
output's own quantization. The Mul and Add of GELU's
decomposition are quantized, its Div and Erf run in float (QUANTIZE_GELU: on
convmixer_1024_20_ks9_p14 this was 1.74x FP32 at batch 4 against 1.52x with all of GELU in
float, the same at batch 1, and the same top-1 on digits; README). The stem stays in float
(cpu_nodes). `quant_pre_process` (shape inference, ONNX Runtime's basic
graph optimizations) then prepares the graph that is both calibrated and quantized.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from runtime.core.errors import UserError, require

from .qdq import _consumers, _producers, drop_unused_initializers, skip_adds
from .staging import intermediate_errors

log = logging.getLogger(__name__)

# Bump when the layout changes, so existing CPU graphs count as stale.
CPU_QDQ_SCHEME = (
    "ort-cpu-v1: QDQ, uint8 asymmetric activations, int8 per-channel weights, int32 bias, outputs quantized, "
    "BatchNorm as a depthwise 1x1 Conv, GELU's Mul/Add quantized, the stem float, float logits"
)
SCALE_SUFFIX = "/bn_scale"  # node names of the rewritten BatchNorms: how cpu_nodes finds them
SHIFT_SUFFIX = "/bn_shift"
FOLD_RELU = True  # see rewrite_batchnorm and the README: measured faster at batch 4
QUANTIZE_GELU = True  # GELU's Mul/Add quantized (False: all of GELU in float between a DQ and a Q; README)


def _array(graph: Any, name: str) -> np.ndarray:
    from onnx import numpy_helper

    init = next((t for t in graph.initializer if t.name == name), None)
    if init is None:
        raise UserError(f"BatchNormalization input {name!r} is not a constant; cannot rewrite it exactly")
    return np.asarray(numpy_helper.to_array(init), dtype=np.float64)


def _set_array(graph: Any, name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper

    init = next(t for t in graph.initializer if t.name == name)
    init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))


def _foldable_conv(graph: Any, bn: Any, scale: np.ndarray) -> Any | None:
    """The Conv behind `Conv -> Relu -> bn` when the Mul can fold into it, else None."""
    producers, consumers = _producers(graph), _consumers(graph)
    relu = producers.get(bn.input[0])
    if relu is None or relu.op_type != "Relu" or len(consumers.get(relu.output[0], [])) != 1:
        return None
    conv = producers.get(relu.input[0])
    if conv is None or conv.op_type != "Conv" or len(consumers.get(conv.output[0], [])) != 1:
        return None
    inits = {t.name for t in graph.initializer}
    params = list(conv.input[1:])
    if not np.all(scale > 0) or not all(p in inits and len(consumers.get(p, [])) == 1 for p in params):
        return None
    return conv


def rewrite_batchnorm(model: Any) -> dict[str, int]:
    """Replace every BatchNormalization in `model` (in place) by a depthwise 1x1 Conv, or (with
    FOLD_RELU, after a ReLU with positive scales) by an Add, the scale folded into the conv
    before the ReLU; returns how many of each."""
    from onnx import helper, numpy_helper

    graph = model.graph
    counts = {"depthwise": 0, "folded_into_conv": 0}
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        if len(bn.output) != 1 and any(bn.output[1:]):
            raise UserError(f"{bn.name}: a training-mode BatchNormalization cannot be rewritten")
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (_array(graph, name) for name in bn.input[1:5])
        if mean.ndim != 1:
            raise UserError(f"{bn.name}: expected per-channel statistics, got shape {mean.shape}")
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        at = list(graph.node).index(bn)
        conv = _foldable_conv(graph, bn, scale) if FOLD_RELU else None
        if conv is not None:
            weight = _array(graph, conv.input[1])
            _set_array(graph, conv.input[1], weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)))
            if len(conv.input) > 2 and conv.input[2]:
                _set_array(graph, conv.input[2], _array(graph, conv.input[2]) * scale)
            name = f"{bn.name}{SHIFT_SUFFIX}"
            graph.initializer.append(numpy_helper.from_array(shift.reshape(-1, 1, 1).astype(np.float32), name + "/B"))
            node = helper.make_node("Add", [bn.input[0], name + "/B"], [bn.output[0]], name=name)
            counts["folded_into_conv"] += 1
        else:
            # y = scale * x + shift per channel: one weight per channel (per-channel int8 holds
            # it exactly, +-127 times its own scale) and an int32 bias once quantized.
            name = f"{bn.name}{SCALE_SUFFIX}"
            c = scale.size
            graph.initializer.append(numpy_helper.from_array(scale.reshape(c, 1, 1, 1).astype(np.float32), name + "/W"))
            graph.initializer.append(numpy_helper.from_array(shift.astype(np.float32), name + "/B"))
            node = helper.make_node(
                "Conv", [bn.input[0], name + "/W", name + "/B"], [bn.output[0]], name=name, group=c, kernel_shape=[1, 1]
            )
            counts["depthwise"] += 1
        graph.node.remove(bn)
        graph.node.insert(at, node)
    drop_unused_initializers(model)
    return counts


def prepare(onnx_path: Path, workdir: Path) -> Path:
    """model.onnx with its BatchNorms rewritten, then through `quant_pre_process`: the FP32
    graph (same function) that calibration runs and the CPU graph is quantized from."""
    onnx = require("onnx", "pip install onnx")
    shape = require("onnxruntime.quantization.shape_inference", "pip install onnxruntime")
    model = onnx.load(str(onnx_path))
    counts = rewrite_batchnorm(model)
    log.debug("CPU graph: BatchNorm rewritten %s", counts)
    rewritten, prepared = workdir / "cpu.rewritten.onnx", workdir / "cpu.prepared.onnx"
    onnx.save(model, str(rewritten))
    chatter = logging.getLogger(shape.__name__)  # "Performing symbolic shape inference..." is not progress
    level = chatter.level
    chatter.setLevel(logging.WARNING)
    try:
        with intermediate_errors(workdir):  # its shape inference also goes through a file
            shape.quant_pre_process(str(rewritten), str(prepared))
    finally:
        chatter.setLevel(level)
    return prepared


def _gelu_nodes(model: Any, keep: set[str]) -> list[str]:
    """The Mul/Add of decomposed GELUs: every Mul/Add not in `keep` and not a skip-add."""
    return [n.name for n in model.graph.node if n.op_type in ("Mul", "Add") and n.name not in keep]


def stem_nodes(model: Any) -> list[str]:
    """The stem: every node from the graph input up to its BatchNorm's rewrite, inclusive."""
    found = []
    for node in model.graph.node:
        found.append(node.name)
        if node.name.endswith((SCALE_SUFFIX, SHIFT_SUFFIX)):
            return found
    return []


def companions(model: Any, layers: list[str]) -> dict[str, list[str]]:
    """Each layer's followers in graph order up to the next layer: a convolution's activation
    and BatchNorm. A layer left in float in the CPU graph takes them along."""
    chosen: set[str] = set(layers)
    found: dict[str, list[str]] = {name: [] for name in layers}
    current = None
    for node in model.graph.node:
        if node.name in chosen:
            current = node.name
        elif current is not None:
            found[current].append(node.name)
    return found


def cpu_nodes(model: Any) -> list[str]:
    """The nodes the CPU graph quantizes, in graph order (before any exclusion).

    The stem (patch convolution, activation, BatchNorm) stays in float: it sees the raw
    input, where a few outlying calibration images widen its output ranges most (on the
    digits set with 8 of 512 images scaled x25, quantizing it cost 1.1 points of top-1), and
    it is under 1% of the model's multiply-adds."""
    adds = set(skip_adds(model))
    stem = set(stem_nodes(model))
    chosen = {
        n.name
        for n in model.graph.node
        if n.op_type in ("Conv", "Gemm", "Relu")
        or n.name in adds
        or n.name.endswith((SCALE_SUFFIX, SHIFT_SUFFIX))
    }
    if QUANTIZE_GELU:
        chosen |= set(_gelu_nodes(model, chosen))
    return [n.name for n in model.graph.node if n.name in chosen and n.name not in stem]


def cpu_tensors(model: Any) -> set[str]:
    """The activation tensors the CPU graph quantizes: inputs and outputs of cpu_nodes."""
    inits = {t.name for t in model.graph.initializer}
    chosen = set(cpu_nodes(model))
    return {t for n in model.graph.node if n.name in chosen for t in [*n.input, *n.output] if t and t not in inits}
