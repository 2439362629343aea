"""Q/DQ graph rules that TensorRT enforces, and the one placement fix they need.

ONNX Runtime's QDQ quantizer quantizes both inputs of a quantized Add. TensorRT wants
only the residual (skip) input of a skip-add quantized, so it can fuse the add into the
producing convolution: `only_residual_add_inputs` removes the Q/DQ pair on the branch
input. `check_tensorrt_rules` verifies the finished graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.core.errors import UserError

QOPERATOR_OPS = {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QLinearAdd", "QGemm"}


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def quantized_source(producers: dict[str, Any], name: str) -> tuple[Any, Any] | None:
    """(DQ, Q) when tensor `name` comes out of a DequantizeLinear fed by a QuantizeLinear, else None."""
    dq = producers.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producers.get(dq.input[0])
    return (dq, q) if q is not None and q.op_type == "QuantizeLinear" else None


def _consumers(graph: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _is_ancestor(tensor: str, of: str, producers: dict[str, Any], limit: int = 64) -> bool:
    """Whether `tensor` feeds, within `limit` nodes, the computation of `of`."""
    frontier: list[str] = [of]
    seen: set[int] = set()
    while frontier and len(seen) < limit:
        name = frontier.pop()
        if name == tensor:
            return True
        node = producers.get(name)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        frontier.extend(node.input)
    return False


def skip_adds(model: Any) -> list[str]:
    """Names of residual Adds: both inputs computed, one an ancestor of the other.

    GELU's decomposition also contains an Add (erf(x) + 1), which must stay in float."""
    graph = model.graph
    producers = _producers(graph)
    found = []
    for node in graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        a, b = node.input
        if a not in producers or b not in producers:
            continue
        if producers[a].op_type == "Constant" or producers[b].op_type == "Constant":
            continue
        if _is_ancestor(a, b, producers) or _is_ancestor(b, a, producers):
            found.append(node.name)
    return found


def residual_inputs(model: Any) -> dict[str, str]:
    """Each skip-add's name -> its residual (skip) input: the one the other is computed from."""
    graph = model.graph
    producers = _producers(graph)
    adds = set(skip_adds(model))
    found = {}
    for node in graph.node:
        if node.name in adds:
            a, b = node.input
            found[node.name] = a if _is_ancestor(a, b, producers) else b
    return found


def only_residual_add_inputs(model: Any) -> int:
    """Drop the Q/DQ on the non-residual input of every quantized skip-add; returns how many."""
    graph = model.graph
    producers, consumers = _producers(graph), _consumers(graph)
    removed = 0
    for add in [n for n in graph.node if n.op_type == "Add"]:
        pairs = []  # (input slot, DQ node, Q node, float tensor before Q)
        for slot, name in enumerate(add.input):
            found = quantized_source(producers, name)
            if found is not None:
                dq, q = found
                pairs.append((slot, dq, q, q.input[0]))
        if len(pairs) != 2:
            continue
        (slot_a, dq_a, q_a, a), (slot_b, dq_b, q_b, b) = pairs
        if _is_ancestor(a, b, producers):  # a is the skip input, b the branch
            slot, dq, q, src = slot_b, dq_b, q_b, b
        elif _is_ancestor(b, a, producers):
            slot, dq, q, src = slot_a, dq_a, q_a, a
        else:
            continue
        add.input[slot] = src
        if len(consumers.get(dq.output[0], [])) == 1:
            graph.node.remove(dq)
            if len(consumers.get(q.output[0], [])) == 1:
                graph.node.remove(q)
        removed += 1
    return removed


def drop_unused_initializers(model: Any) -> int:
    """Remove initializers no node reads (the scales and zero points of the Q/DQ pairs taken
    off the skip-adds); returns how many. ONNX Runtime would log a line for each, every time
    the graph loads."""
    graph = model.graph
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return len(unused)


def check_tensorrt_rules(model: Any) -> dict[str, int]:
    """Raise UserError if the Q/DQ graph breaks a TensorRT rule; returns node counts."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = _producers(model.graph)
    problems: list[str] = []
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0, "per_channel_weights": 0}
    for node in model.graph.node:
        if node.op_type in QOPERATOR_OPS:
            problems.append(f"{node.name}: {node.op_type} (QOperator format) is not supported by TensorRT")
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        counts[node.op_type] += 1
        scale = inits.get(node.input[1])
        zero = inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is not None and (zero.dtype != np.int8 or np.any(zero != 0)):
            problems.append(f"{node.name}: zero point must be int8 0, got {zero.dtype} {zero.ravel()[:3]}")
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            data = inits[node.input[0]]
            if data.dtype != np.int8:
                problems.append(f"{node.name}: dequantizes {data.dtype} (bias?); TensorRT takes int8 only")
            elif scale is not None and scale.size > 1:
                # Conv weights are [out, in/groups, k, k]; Linear exports as Gemm(transB=1), [out, in].
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                if axis != 0 or scale.size != data.shape[0]:
                    problems.append(
                        f"{node.name}: per-channel scale must be on the output-channel axis 0, got axis {axis}"
                    )
                counts["per_channel_weights"] += 1
        elif node.op_type == "QuantizeLinear" and scale is not None and scale.size != 1:
            problems.append(f"{node.name}: activation scales must be per-tensor, got {scale.size} values")
        if node.op_type == "QuantizeLinear" and producers.get(node.input[0]) is not None:
            src = producers[node.input[0]]
            # An Add's output is the next conv's input, so only Conv/Gemm outputs are wrong here.
            if src.op_type in ("Conv", "Gemm"):
                problems.append(f"{node.name}: quantizes the output of {src.op_type} {src.name}; quantize inputs only")
    if problems:
        raise UserError(f"INT8 graph breaks TensorRT's Q/DQ rules: {'; '.join(problems[:3])}")
    return counts
