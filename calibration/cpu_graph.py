"""The INT8 graph for ONNX Runtime's CPU: the same activation ranges, laid out for MLAS.

TensorRT's layout (symmetric int8, Q/DQ on inputs only) runs slower than FP32 on ONNX
Runtime's CPU: a convolution runs in integer only when DQ -> Conv -> Q fuses into
QLinearConv, and MLAS's x86 kernels take uint8 activations. So this graph is ONNX
Runtime's own CPU recipe, made by its `quantize_static` (QDQ format): uint8 asymmetric
activations, int8 symmetric per-channel weights, int32 biases, Q/DQ on the inputs and
outputs of every Conv, Gemm, Relu, BatchNorm Mul/Add and skip-add.

Before quantization each BatchNormalization (which in ConvMixer follows the activation, so
cannot fold into the convolution) is rewritten exactly as a per-channel Mul + Add. After
a ReLU whose channel scales are all positive, the Mul is folded into the convolution's
weights and bias instead (relu(a*x) = a*relu(x) for a > 0): the weights are quantized per
channel, so the fold costs no precision, and the block loses one quantized Mul. GELU stays
in float between a DQ and a Q (measured against quantizing its Mul/Add: see README).
Then `quant_pre_process` (shape inference, ONNX Runtime's basic graph optimizations)
prepares the graph that is both calibrated and quantized.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import UserError, require

from .qdq import _consumers, _producers, drop_unused_initializers, skip_adds

log = logging.getLogger(__name__)

# Bump when the layout changes, so existing CPU graphs count as stale.
CPU_QDQ_SCHEME = (
    "ort-cpu-v1: QDQ, uint8 asymmetric activations, int8 per-channel weights, int32 bias, outputs quantized, "
    "BatchNorm as Mul+Add (scale folded into the conv after ReLU), GELU float"
)
SCALE_SUFFIX = "/bn_scale"  # node names of the rewritten BatchNorms: how cpu_nodes finds them
SHIFT_SUFFIX = "/bn_shift"
QUANTIZE_GELU = False  # True quantizes GELU's inner Mul/Add as well (measured worse; see README)


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
    """Replace every BatchNormalization in `model` (in place) by Mul + Add, or by an Add with
    the scale folded into the convolution before a ReLU; returns how many of each."""
    from onnx import helper, numpy_helper

    graph = model.graph
    counts = {"mul_add": 0, "folded_into_conv": 0}
    for bn in [n for n in graph.node if n.op_type == "BatchNormalization"]:
        if len(bn.output) != 1 and any(bn.output[1:]):
            raise UserError(f"{bn.name}: a training-mode BatchNormalization cannot be rewritten")
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (_array(graph, name) for name in bn.input[1:5])
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        shape = (-1, 1, 1) if mean.ndim == 1 else mean.shape
        at = list(graph.node).index(bn)
        shift_name = f"{bn.name}{SHIFT_SUFFIX}"
        graph.initializer.append(numpy_helper.from_array(shift.reshape(shape).astype(np.float32), shift_name + "/B"))
        conv = _foldable_conv(graph, bn, scale)
        nodes = []
        if conv is not None:
            weight = _array(graph, conv.input[1])
            _set_array(graph, conv.input[1], weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1)))
            if len(conv.input) > 2 and conv.input[2]:
                _set_array(graph, conv.input[2], _array(graph, conv.input[2]) * scale)
            scaled = bn.input[0]
            counts["folded_into_conv"] += 1
        else:
            scale_name = f"{bn.name}{SCALE_SUFFIX}"
            graph.initializer.append(
                numpy_helper.from_array(scale.reshape(shape).astype(np.float32), scale_name + "/B")
            )
            scaled = scale_name + "/out"
            nodes.append(helper.make_node("Mul", [bn.input[0], scale_name + "/B"], [scaled], name=scale_name))
            counts["mul_add"] += 1
        nodes.append(helper.make_node("Add", [scaled, shift_name + "/B"], [bn.output[0]], name=shift_name))
        graph.node.remove(bn)
        for i, node in enumerate(nodes):
            graph.node.insert(at + i, node)
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
        shape.quant_pre_process(str(rewritten), str(prepared))
    finally:
        chatter.setLevel(level)
    return prepared


def _gelu_nodes(model: Any, keep: set[str]) -> list[str]:
    """The Mul/Add of decomposed GELUs: every Mul/Add not in `keep` and not a skip-add."""
    return [n.name for n in model.graph.node if n.op_type in ("Mul", "Add") and n.name not in keep]


def cpu_nodes(model: Any) -> list[str]:
    """The nodes the CPU graph quantizes, in graph order (before any exclusion)."""
    adds = set(skip_adds(model))
    chosen = {
        n.name
        for n in model.graph.node
        if n.op_type in ("Conv", "Gemm", "Relu")
        or n.name in adds
        or n.name.endswith((SCALE_SUFFIX, SHIFT_SUFFIX))
    }
    if QUANTIZE_GELU:
        chosen |= set(_gelu_nodes(model, chosen))
    return [n.name for n in model.graph.node if n.name in chosen]


def cpu_tensors(model: Any) -> set[str]:
    """The activation tensors the CPU graph quantizes: inputs and outputs of cpu_nodes."""
    inits = {t.name for t in model.graph.initializer}
    chosen = set(cpu_nodes(model))
    return {t for n in model.graph.node if n.name in chosen for t in [*n.input, *n.output] if t and t not in inits}
