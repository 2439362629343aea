"""The prepared FP32 graph + the CPU ranges -> model.int8.cpu.onnx, by ONNX Runtime's `quantize_static`.

Layers left in float (--exclude, --keep-fp32, mixed precision) are left out of
`nodes_to_quantize`. A node between a DQ and a Q would still be fused by ONNX Runtime into
the integer kernel, so `_float_inputs` feeds each such node the float tensor from before a
Q/DQ pair, if one is left on its inputs (on this project's graphs the quantizer, given an
explicit `nodes_to_quantize`, left none: it is a guard). It runs in FP32: this graph has
no FP16 base, and x86 CPUs run FP16 slower than FP32. A quantized node whose output only
float nodes read would have no Q on its output, so no integer kernel either:
`_with_lone_producers` leaves it in float too, weights included.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from runtime.core.errors import UserError, require

from .cpu_graph import cpu_nodes
from .qdq import _producers, drop_unused_initializers, quantized_source
from .quantize import _DropMessage, _without_root_message
from .staging import intermediate_errors, stage

log = logging.getLogger(__name__)


def _quantize_static(q: Any, prepared: Path, out: Path, cache: Path, quantize: list[str]) -> None:
    calib = require("onnxruntime.quantization.calibrate", "pip install onnxruntime")
    q.quantize_static(
        str(prepared),
        str(out),
        None,
        quant_format=q.QuantFormat.QDQ,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
        per_channel=True,
        calibrate_method=calib.load_tensors_data(cache).calibration_method,
        nodes_to_quantize=quantize,
        extra_options={
            "ActivationSymmetric": False,
            "WeightSymmetric": True,
            # The logits stay float: QGemm writes them in float, no uint8 rounding of the answer.
            "OpTypesToExcludeOutputQuantization": ["Gemm"],
        },
        calibration_cache_path=str(cache),
    )


def _float_inputs(model: Any, nodes: set[str]) -> int:
    """Feed each node in `nodes` the float tensor behind any Q -> DQ on its inputs; returns how many."""
    producers = _producers(model.graph)
    rewired = 0
    for node in (n for n in model.graph.node if n.name in nodes):
        for slot, name in enumerate(node.input):
            found = quantized_source(producers, name)
            if found is not None:
                node.input[slot] = found[1].input[0]
                rewired += 1
    if rewired:
        used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
        for node in [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] not in used]:
            model.graph.node.remove(node)
        used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
        for node in [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.output[0] not in used]:
            model.graph.node.remove(node)
    return rewired


def _with_lone_producers(model: Any, keep_float: set[str]) -> set[str]:
    """`keep_float` plus each node whose every output is read only by nodes in `keep_float`."""
    readers: dict[str, set[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.name)
    outputs = {o.name for o in model.graph.output}
    lone = {
        node.name
        for node in model.graph.node
        if node.name not in keep_float
        and all(o not in outputs and readers.get(o) and readers[o] <= keep_float for o in node.output)
    }
    return keep_float | lone


def check_cpu_layout(model: Any, every_conv_int8: bool = True) -> dict[str, int]:
    """Raise UserError unless `model` has the CPU layout; returns node counts.

    uint8 activations, int8 per-channel weights on the output-channel axis, a Q on the
    output of every Conv with int8 weights (unless `every_conv_int8` is False: with layers
    left in float, a neighbour's output may stay float, and it then runs in float on its
    dequantized weights), and no BatchNormalization left."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = _producers(model.graph)
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    problems: list[str] = []
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0, "per_channel_weights": 0, "int8_convs": 0}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            problems.append(f"{node.name}: a BatchNormalization is left")
        if node.op_type == "QuantizeLinear":
            counts["QuantizeLinear"] += 1
            zero = inits.get(node.input[2]) if len(node.input) > 2 else None
            if zero is None or zero.dtype != np.uint8:
                problems.append(f"{node.name}: activations must be uint8, got {None if zero is None else zero.dtype}")
        elif node.op_type == "DequantizeLinear":
            counts["DequantizeLinear"] += 1
        elif node.op_type in ("Conv", "Gemm"):
            weight = producers.get(node.input[1])
            if weight is None or weight.op_type != "DequantizeLinear":
                continue  # left in float
            data, scale = inits.get(weight.input[0]), inits.get(weight.input[1])
            if data is None or data.dtype != np.int8 or scale is None or scale.size != data.shape[0]:
                problems.append(f"{node.name}: weights must be int8, per output channel")
            else:
                counts["per_channel_weights"] += 1
            if node.op_type == "Conv":
                outs = consumers.get(node.output[0], [])
                if outs and all(c.op_type == "QuantizeLinear" for c in outs):
                    counts["int8_convs"] += 1
                elif every_conv_int8:
                    problems.append(f"{node.name}: its output has no QuantizeLinear")
    if problems:
        raise UserError(f"the CPU INT8 graph is not laid out for ONNX Runtime: {'; '.join(problems[:3])}")
    return counts


def write_cpu_int8(
    prepared: Path, out: Path, cache: Path, keep_float: list[str], candidate: bool = False
) -> dict[str, Any]:
    """Write the CPU INT8 graph from the prepared FP32 graph with `keep_float` nodes left in
    FP32; returns the layout counts. A `candidate` of mixed precision with nothing left to
    quantize is the prepared FP32 graph itself (what the search compares against)."""
    onnx = require("onnx", "pip install onnx")
    q = require("onnxruntime.quantization", "pip install onnxruntime")
    model = onnx.load(str(prepared), load_external_data=False)
    floats = _with_lone_producers(model, set(keep_float)) if keep_float else set()
    quantize = [n for n in cpu_nodes(model) if n not in floats]
    if not quantize:
        if candidate:
            onnx.save(model, str(out))
            return {}
        raise UserError("no layer of the CPU INT8 graph would be INT8")
    with (
        tempfile.TemporaryDirectory(prefix="int8cpu.") as tmp,
        _without_root_message(_DropMessage("pre-processing before quantization")),
    ):
        qdq_path = Path(tmp) / "qdq.onnx"
        staged = stage(prepared, Path(tmp))
        with intermediate_errors(Path(tmp)):
            _quantize_static(q, staged, qdq_path, cache, quantize)
            model = onnx.load(str(qdq_path))
    _float_inputs(model, floats)
    drop_unused_initializers(model)
    counts = check_cpu_layout(model, every_conv_int8=not floats)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    log.debug("CPU INT8 graph %s: %s", out, counts)
    return counts
