"""ONNX graph edits shared by `export fp16` and calibration's FP16 base.

- `match_nodes`: pick nodes by a user's pattern ('depthwise', an op type such as Gemm,
  or a node-name glob), so every option that names layers (`export fp16 --keep-fp32`,
  `calibration --exclude/--keep-fp32`) reads a pattern the same way.
- `to_float16`: onnxconverter-common's FP16 conversion with float32 graph I/O and some
  nodes kept in FP32, mending one converter slip.

Both take and return onnx ModelProtos; nothing here is imported by the runtime itself.
"""

from __future__ import annotations

import fnmatch
import logging
import warnings
from typing import Any

from runtime.core.errors import UserError, require

log = logging.getLogger(__name__)

PATTERN_HELP = "'depthwise', an op type like Gemm, or a node-name glob like 'node_conv2d_*'"


def node_matches(node: Any, pattern: str) -> bool:
    """Whether one ONNX NodeProto matches `pattern`."""
    if pattern == "depthwise":
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        return bool(node.op_type == "Conv" and group > 1)
    return bool(node.op_type == pattern or fnmatch.fnmatchcase(node.name, pattern))


def match_nodes(model: Any, patterns: list[str], option: str) -> list[str]:
    """Names of the nodes of `model` that any pattern matches, in graph order.

    A pattern that matches nothing is a user error naming `option`: a typo must not
    silently keep nothing."""
    chosen: list[str] = []
    for pattern in patterns:
        matched = [node.name for node in model.graph.node if node_matches(node, pattern)]
        if not matched:
            raise UserError(f"{option} {pattern!r} matches no node (try {PATTERN_HELP})")
        chosen.extend(m for m in matched if m not in chosen)
    return chosen


def to_float16(model: Any, keep_fp32: list[str]) -> Any:
    """`model` with every float tensor in FP16 except its inputs/outputs and `keep_fp32` nodes."""
    import onnx

    float16 = require("onnxconverter_common.float16", "pip install onnxconverter-common (in the export extra)")
    originally_fp32 = {o.name for o in model.graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    fp32_weights = {t.name: t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    # A uint8 input (`export onnx --input uint8`) is cast to float inside the graph; that Cast
    # stays float32 (the converter would retype its output but not its `to`, which ORT refuses).
    non_float_inputs = {i.name for i in model.graph.input if i.type.tensor_type.elem_type != onnx.TensorProto.FLOAT}
    input_casts = [n.name for n in model.graph.node if n.op_type == "Cast" and n.input[0] in non_float_inputs]
    block = [*keep_fp32, *(c for c in input_casts if c not in keep_fp32)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=block)
    _summarise_truncations(caught)
    _restore_fp32_weights(converted, set(keep_fp32), fp32_weights)
    # When a kept node writes a graph output, the converter casts that output to FP16 and
    # declares it FP16, despite keep_io_types. The kept node already computes FP32: make
    # the cast a no-op to float32 and declare the output float32 again.
    producers = {out: node for node in converted.graph.node for out in node.output}
    for output in converted.graph.output:
        if output.name in originally_fp32 and output.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            cast = producers.get(output.name)
            if cast is None or cast.op_type != "Cast":
                raise UserError(f"FP16 conversion left output {output.name!r} in FP16 and cannot mend it")
            for attr in cast.attribute:
                if attr.name == "to":
                    attr.i = onnx.TensorProto.FLOAT
            output.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    return converted


def _summarise_truncations(caught: list[warnings.WarningMessage]) -> None:
    """The converter warns once per out-of-range value ("the float32 number 1e-09 will be
    truncated to 1e-07"), a block of lines on a real model: say it in one line with a count.
    Other warnings pass through unchanged."""
    truncated = [str(w.message) for w in caught if "will be truncated to" in str(w.message)]
    for w in caught:
        if "will be truncated to" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if truncated:
        log.info(
            "FP16: %d weight value(s) outside FP16's range were clamped to it (first: %s); "
            "the golden parity check says whether that matters",
            len(truncated),
            truncated[0].removeprefix("the "),
        )


def _restore_fp32_weights(model: Any, kept: set[str], fp32_weights: dict[str, Any]) -> None:
    """Feed kept nodes their original FP32 weights: the converter rounds every initializer
    to FP16 and casts it back for a kept node, which loses precision and range."""
    import onnx

    producers = {out: node for node in model.graph.node for out in node.output}
    added: set[str] = set()
    for node in model.graph.node:
        if node.name not in kept:
            continue
        for slot, name in enumerate(node.input):
            cast = producers.get(name)
            if cast is None or cast.op_type != "Cast" or cast.input[0] not in fp32_weights:
                continue
            original = fp32_weights[cast.input[0]]
            fp32_name = f"{original.name}_fp32"
            if fp32_name not in added:
                copy = onnx.TensorProto()
                copy.CopyFrom(original)
                copy.name = fp32_name
                model.graph.initializer.append(copy)
                added.add(fp32_name)
            node.input[slot] = fp32_name
    if added:  # the casts and FP16 copies that only kept nodes read are dead now
        used = {name for node in model.graph.node for name in node.input}
        dead = [n for n in model.graph.node if n.op_type == "Cast" and not set(n.output) & used]
        dead_outputs = {o.name for o in model.graph.output}
        for node in dead:
            if not set(node.output) & dead_outputs:
                model.graph.node.remove(node)
        used = {name for node in model.graph.node for name in node.input}
        for init in [t for t in model.graph.initializer if t.name not in used]:
            model.graph.initializer.remove(init)


# Element types packed below one byte: their counts do not map onto bytes one to one.
_PACKED = frozenset({"INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2"})


def declared_size(path: Any, tensor: Any, onnx: Any) -> int:
    """The bytes an initializer's dims and type declare, checked against the data it holds
    in the file (none for external data: external_bytes compares those). 0 where the
    type has no fixed size (strings, sub-byte types)."""
    if any(d < 0 for d in tensor.dims):
        raise UserError(f"{path}: initializer {tensor.name!r} has dims {list(tensor.dims)} | expected sizes from 0")
    count = 1
    for d in tensor.dims:
        count *= int(d)
    type_name = onnx.TensorProto.DataType.Name(tensor.data_type) if tensor.data_type in onnx.TensorProto.DataType.values() else "?"
    if type_name in _PACKED or type_name in ("STRING", "UNDEFINED", "?"):
        return 0
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return count * itemsize
    if tensor.HasField("raw_data"):
        held, want, unit = len(tensor.raw_data), count * itemsize, "bytes"
    else:
        per = 2 if type_name.startswith("COMPLEX") else 1
        held, want, unit = len(getattr(tensor, onnx.helper.tensor_dtype_to_field(tensor.data_type))), count * per, "values"
    if held != want:
        raise UserError(
            f"{path}: initializer {tensor.name!r} has dims {list(tensor.dims)} ({want} {unit} of "
            f"{type_name.lower()}), but holds {held} {unit}; the file is damaged or was edited"
        )
    return count * itemsize


def external_bytes(path: Any, tensor: Any, declared: int, stored: dict[str, Any]) -> int:
    """The bytes one initializer stored outside the model takes in memory: its length, which
    must be what its dims and type declare. Where and how the bytes are stored (inside the
    model's folder, whole-number offset and length, a regular file long enough) is
    runtime.core.onnx_files' one rule, already applied: `stored` is its record by tensor name."""
    record = stored.get(tensor.name)
    length = record.length if record is not None else None
    if length is not None and declared and length != declared:
        raise UserError(
            f"{path}: the weights of {tensor.name!r} have dims {list(tensor.dims)} ({declared} bytes), "
            f"but external-data length {length}"
        )
    return length if length is not None else declared


def load_onnx(path: Any, load_external_data: bool = True) -> Any:
    """The ModelProto in the file `path`, or a one-line UserError when it is not one.

    Always read as binary protobuf: onnx.load would read a `.json` name as JSON text."""
    onnx = require("onnx", "pip install -e '.[export]'")
    from pathlib import Path

    from google.protobuf.message import DecodeError

    from runtime.core.onnx_files import external_data_files

    try:
        model = onnx.load_model(str(path), format="protobuf", load_external_data=False)
    except DecodeError as exc:
        raise UserError(f"{path}: not an ONNX model ({exc})") from None
    if not model.graph.node:  # stray bytes can parse as an empty message
        raise UserError(f"{path}: not an ONNX model (no graph nodes)")
    # Weights stored in files beside the model (external data) must all be there, whole, and
    # inside the model's folder, even when not loaded now (runtime.core.onnx_files has the rule).
    folder = Path(path).parent
    stored = {e.tensor: e for e in external_data_files(path)}  # where the bytes are: the one rule
    external = 0
    for tensor in model.graph.initializer:
        declared = declared_size(path, tensor, onnx)
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            external += external_bytes(path, tensor, declared, stored)
    # Every step that takes the graph holds its weights in memory (the FP16 rewrite, ONNX
    # Runtime, TensorRT's parser): what they declare must fit before any of them is read.
    from runtime.core.memory import check_host_memory

    check_host_memory(external, f"{path} (external-data weights)", "this machine cannot hold the model")
    if load_external_data:
        try:
            onnx.load_external_data_for_model(model, str(folder))
        except onnx.checker.ValidationError as exc:
            raise UserError(f"{path}: its external data cannot be read ({str(exc).splitlines()[0]})") from None
        for tensor in model.graph.initializer:  # without a length, onnx reads to the end of the file
            declared_size(path, tensor, onnx)
    return model
