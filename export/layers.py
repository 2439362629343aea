"""The per-layer precision report of an engine: `model.<precision>.layers.json`.

What precision each fused layer of an engine really runs in is known only after the build.
Two sources give it:

- TensorRT-RTX, with no GPU: the builder's VERBOSE log carries a `Layers:` message when the
  config's profiling verbosity is DETAILED, one line per fused layer (name, type, input,
  constant and output data types, tactic, source ONNX nodes).
- TensorRT with a GPU: the engine inspector's JSON (`LayerInformationFormat.JSON`).

Both are read into the same report:
`{"layers": [{"name", "type", "inputs", "weights", "outputs", "onnx_nodes", "precision"}],
  "summary": {"fp32": n, "fp16": n, "int8": n}, "source": ...}`.
Precisions are spelled fp32/fp16/bf16/int8/fp8; other data types (int32, bool, ...) keep
their library name in lower case.

Layer types are the library's, in lower case, except that a layer RTX calls `correlation`
(a convolution left on its own) is reported as `convolution`. Most convolutions do not
appear under that name: RTX fuses them with their neighbours into `runtime_fusion` or
`kgen` layers (the fused layer's name and ONNX nodes still show them, e.g. `Corr...` and
node_conv2d). Other types seen are `shape_call` (shape arithmetic) and, from TensorRT's
inspector, its own names (convolution, pointwise, ...).

The summary counts each layer once, by its *compute precision*, read from its input
tensors: int8 (or fp8) when every input is quantized (a convolution reading int8
activations with int8 weights is int8 even when it writes fp32), else the narrowest
floating-point input type (a fused kernel that reads an int8 skip input beside an fp32 one
computes in fp32). Layers that read no tensor (shape calculations) are not counted. bf16 and
fp8 appear in the summary only when present.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.core.artifacts import ENGINE_SUFFIX, LAYERS_SUFFIX, PRECISIONS, layers_path, model_path
from runtime.core.engine_meta import read_sidecar
from runtime.core.errors import UserError
from runtime.core.io import read_json_object

QUANTIZED = ("fp8", "int8")
FLOATS = ("bf16", "fp16", "fp32")  # narrowest first
_DTYPE_WORDS = {
    "float": "fp32",
    "fp32": "fp32",
    "half": "fp16",
    "fp16": "fp16",
    "bfloat16": "bf16",
    "bf16": "bf16",
    "int8": "int8",
    "fp8": "fp8",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "bool": "bool",
    "int4": "int4",
    "fp4": "fp4",
}
# The library's word for a layer type -> the report's. RTX names an unfused convolution
# "correlation" (what the kernel computes); TensorRT's inspector says "Convolution" in ParameterType.
_TYPE_NAMES = {"correlation": "convolution"}
_ONNX_NODE = re.compile(r"\[ONNX Layer: ([^\]]*)\]")
_DATATYPE = re.compile(r"Datatype: (\w+)")
_RTX_FIELDS = ("LayerType", "Inputs", "Constants", "Outputs", "TacticName")


def precision_name(dtype: str) -> str:
    """A library data type ("Half", "Int8", "BFloat16") in the report's spelling ("fp16", ...)."""
    return _DTYPE_WORDS.get(dtype.strip().lower(), dtype.strip().lower())


def _format_precision(text: str) -> str:
    """The data type inside TensorRT's "Format/Datatype" text, e.g.
    'Channel major FP16 format where channel % 8 == 0 (kCHW8)' -> 'fp16'."""
    for word in re.findall(r"[A-Za-z0-9]+", text):
        if word.lower() in _DTYPE_WORDS:
            return _DTYPE_WORDS[word.lower()]
    return "unknown"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class LayerInfo:
    name: str
    type: str
    inputs: list[str]  # precision of each input tensor
    weights: list[str]  # precision of each constant (weights, bias, scales) fused in
    outputs: list[str]
    onnx_nodes: list[str]  # the ONNX nodes this fused layer came from

    @property
    def precision(self) -> str | None:
        """Compute precision (the module docstring gives the rule); None for shape-only layers."""
        known = [p for p in self.inputs if p in QUANTIZED + FLOATS]
        if known and all(p in QUANTIZED for p in known):
            return next(p for p in QUANTIZED if p in known)
        return next((p for p in FLOATS if p in known), None)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerInfo:
        return cls(
            name=str(d["name"]),
            type=str(d["type"]),
            inputs=list(d.get("inputs", [])),
            weights=list(d.get("weights", [])),
            outputs=list(d.get("outputs", [])),
            onnx_nodes=list(d.get("onnx_nodes", [])),
        )


@dataclass
class LayerReport:
    layers: list[LayerInfo]
    source: str  # "tensorrt-rtx builder log" | "tensorrt engine inspector"
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(PRECISIONS, 0)
        for layer in self.layers:
            p = layer.precision
            if p is not None:
                counts[p] = counts.get(p, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": [layer.to_dict() for layer in self.layers],
            "summary": self.summary,
            "source": self.source,
            "summary_rule": "each layer once: int8/fp8 when every input is quantized, else its narrowest float input",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "layer report") -> LayerReport:
        try:
            return cls([LayerInfo.from_dict(x) for x in d["layers"]], str(d.get("source", "")))
        except (KeyError, TypeError) as exc:
            raise UserError(f"{where}: not a layer report ({exc})") from None

    def table(self) -> str:
        """One row per layer (layer, type, in/weights/out precisions, ONNX nodes) and the counts."""

        def cell(items: list[str]) -> str:
            return ",".join(_unique(items)) or "-"

        def nodes(items: list[str]) -> str:
            return ", ".join(items[:2]) + (f" +{len(items) - 2}" if len(items) > 2 else "")

        names = _short_names([layer.name for layer in self.layers])
        rows = [
            (
                name,
                layer.type,
                cell(layer.inputs),
                cell(layer.weights),
                cell(layer.outputs),
                nodes(layer.onnx_nodes),
            )
            for name, layer in zip(names, self.layers, strict=True)
        ]
        head = ("layer", "type", "in", "weights", "out", "ONNX nodes")
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
        lines = [
            "  ".join(str(v).ljust(w) for v, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in [head, *rows]
        ]
        lines.insert(1, "-" * len(lines[0]))
        counts = ", ".join(f"{p} {n}" for p, n in self.summary.items())
        lines.append(
            f"layers by compute precision (int8 when all inputs are int8, else the narrowest float input): {counts}  [{self.source}]"
        )
        return "\n".join(lines)


def _sections(line: str) -> dict[str, str]:
    """Split one RTX layer line at its known field names, in order (fields hold nested brackets)."""
    if not line.startswith("Name: "):
        raise ValueError(line[:80])
    out: dict[str, str] = {}
    key, pos = "Name", len("Name: ")
    for nxt in (*_RTX_FIELDS, "Metadata"):
        marker = f", {nxt}: "
        at = line.find(marker, pos)
        if at < 0:
            if nxt == "Metadata":
                break
            raise ValueError(f"no {nxt} in {line[:80]}")
        out[key] = line[pos:at]
        key, pos = nxt, at + len(marker)
    out[key] = line[pos:]
    return out


def parse_rtx_layers(message: str) -> list[LayerInfo]:
    """The layers in TensorRT-RTX's `Layers:` builder message (profiling verbosity DETAILED)."""
    lines = message.splitlines()
    if not lines or lines[0].strip() != "Layers:":
        raise UserError("the builder log has no 'Layers:' message (was profiling verbosity DETAILED?)")
    layers = []
    for line in lines[1:]:
        if not line.strip():
            break  # "I/O Tensors:" and engine metadata follow a blank line
        try:
            f = _sections(line)
        except ValueError as exc:
            raise UserError(f"unexpected line in the builder's layer log: {exc}") from None
        layers.append(
            LayerInfo(
                name=f["Name"],
                type=_TYPE_NAMES.get(f["LayerType"], f["LayerType"]),
                inputs=[precision_name(t) for t in _DATATYPE.findall(f["Inputs"])],
                weights=[precision_name(t) for t in _DATATYPE.findall(f["Constants"])],
                outputs=[precision_name(t) for t in _DATATYPE.findall(f["Outputs"])],
                onnx_nodes=_unique(_ONNX_NODE.findall(f.get("Metadata", ""))),
            )
        )
    return layers


def parse_inspector_json(text: str) -> list[LayerInfo]:
    """The layers in TensorRT's engine inspector JSON (`get_engine_information(JSON)`)."""
    try:
        data = json.loads(text)
        entries = data["Layers"]
    except (json.JSONDecodeError, KeyError, TypeError, RecursionError) as exc:
        raise UserError(f"the engine inspector gave no layer list ({exc or type(exc).__name__})") from None
    layers = []
    for entry in entries:
        if not isinstance(entry, dict):  # names only: the engine was not built with DETAILED verbosity
            raise UserError("the engine inspector gave layer names only (profiling verbosity was not DETAILED)")
        kind = str(entry.get("ParameterType") or entry.get("LayerType", "?"))
        weights = [precision_name(str(entry[k]["Type"])) for k in ("Weights", "Bias") if isinstance(entry.get(k), dict)]
        layers.append(
            LayerInfo(
                name=str(entry.get("Name", "?")),
                type=_TYPE_NAMES.get(kind.lower(), kind.lower()),
                inputs=[_format_precision(str(t.get("Format/Datatype", ""))) for t in entry.get("Inputs", [])],
                weights=weights,
                outputs=[_format_precision(str(t.get("Format/Datatype", ""))) for t in entry.get("Outputs", [])],
                onnx_nodes=_unique(_ONNX_NODE.findall(str(entry.get("Metadata", "")))),
            )
        )
    return layers


def _short_names(names: list[str], width: int = 44) -> list[str]:
    """Long fused-layer names cut in the middle (their ends tell them apart); in full when
    cutting would make two different layers look the same."""
    half = (width - 1) // 2
    short = [n if len(n) <= width else f"{n[:half]}…{n[-(width - 1 - half):]}" for n in names]
    return short if len(set(short)) == len(set(names)) else names


def read_report(path: str | Path) -> LayerReport:
    """The layer report of an engine (give the .engine or its .layers.json; a link is
    followed, as for every model file: runtime.core.artifacts.model_path)."""
    path = model_path(path)
    if not path.name.endswith((ENGINE_SUFFIX, LAYERS_SUFFIX)):
        raise UserError(f"{path}: expected an engine (model.<precision>{ENGINE_SUFFIX}) or its {LAYERS_SUFFIX} report")
    report = path if path.name.endswith(LAYERS_SUFFIX) else layers_path(path)
    engine = path if path.name.endswith(ENGINE_SUFFIX) else path.with_name(path.name[: -len(LAYERS_SUFFIX)] + ENGINE_SUFFIX)
    if engine.is_file():  # the report describes that engine only if the engine is the sidecar's
        read_sidecar(engine)
    if not report.is_file():
        raise UserError(
            f"{report}: no such file; `python -m export engine` writes the layer report beside each engine it builds "
            "(rebuild the engine to get one)"
        )
    return LayerReport.from_dict(read_json_object(report, "a layer report"), str(report))
