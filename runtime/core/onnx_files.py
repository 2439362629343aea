"""The one rule for an ONNX graph's external-data files, and a reader that needs no `onnx`.

A graph may keep tensors in files beside it ("external data"), named by a `location` in
the graph. Every step that reads a graph (export fp16, calibration, ONNX Runtime, parity,
the engine build, export triton) calls `external_data_files` before anything else reads
the graph, so no file from outside the model's folder ever goes into an artifact:

- the location is a relative path, with no `..` and no empty or absolute part;
- the file it names, once every link on the way is followed, lies inside the folder of
  the graph (itself resolved): a symlink, or a symlinked folder, that leaves it is refused;
- it is a regular file, long enough for the offset and length the tensor declares.

The graph is read with a small protobuf wire-format walker (runtime must run where only
numpy and a TensorRT are installed), which visits every tensor a graph can hold:
initializers, sparse initializers, node attributes, subgraphs and functions.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import UserError

EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

# Field numbers in onnx.proto3: which length-delimited fields hold a graph, a node, a
# tensor... in each message. Everything else is skipped.
_MODEL = {7: "graph", 25: "function"}
_FUNCTION = {7: "node"}
_GRAPH = {1: "node", 5: "tensor", 15: "sparse"}
_NODE = {5: "attribute"}
_ATTRIBUTE = {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"}
_SPARSE = {1: "tensor", 2: "tensor"}
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_MAX_DEPTH = 64  # subgraphs nest; a hostile file must not exhaust the stack


@dataclass(frozen=True)
class ExternalData:
    tensor: str  # the tensor's name in the graph
    location: str  # as written in the graph
    path: Path  # the file, resolved
    offset: int
    length: int | None  # None: to the end of the file


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    """(field number, wire type, value) of one message: bytes for wire type 2, else an int."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("truncated field")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            yield number, wire, 0
        else:
            raise ValueError(f"wire type {wire}")
    if pos != len(buf):
        raise ValueError("truncated field")


_KINDS = {"model": _MODEL, "function": _FUNCTION, "graph": _GRAPH, "node": _NODE, "attribute": _ATTRIBUTE}
_KINDS["sparse"] = _SPARSE


def _tensors(buf: memoryview, kind: str, depth: int = 0) -> Iterator[tuple[str, int, dict[str, str]]]:
    """(name, data_location, external_data) of every TensorProto inside a `kind` message."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"graphs nested more than {_MAX_DEPTH} deep")
    if kind == "tensor":
        name, location, entries = "", 0, {}
        for number, wire, value in _fields(buf):
            if number == _TENSOR_NAME and isinstance(value, memoryview):
                name = bytes(value).decode("utf-8", "replace")
            elif number == _TENSOR_LOCATION and wire == 0:
                location = int(value)
            elif number == _TENSOR_EXTERNAL and isinstance(value, memoryview):
                entry = {n: bytes(v).decode("utf-8", "replace") for n, _, v in _fields(value) if isinstance(v, memoryview)}
                entries[entry.get(1, "")] = entry.get(2, "")
        yield name, location, entries
        return
    children = _KINDS[kind]
    for number, wire, value in _fields(buf):
        if wire == 2 and number in children and isinstance(value, memoryview):
            yield from _tensors(value, children[number], depth + 1)


def _whole(text: str, what: str, where: str) -> int:
    if not text.isdigit():
        raise UserError(f"{where}: {what} {text!r} is not a whole number of bytes")
    return int(text)


def check_location(model_file: Path, tensor: str, location: str) -> Path:
    """The resolved file an external-data `location` names, or a UserError saying which rule it breaks."""
    where = f"{model_file}: the weights of {tensor!r} are stored in {location!r}"
    parts = PurePosixPath(location.replace("\\", "/")).parts
    if not location or "\x00" in location:
        raise UserError(f"{where}, which is not a file name")
    if os.path.isabs(location) or location.startswith(("/", "\\")):
        raise UserError(f"{where}, an absolute path; external data must lie in the model's folder")
    if ".." in parts:
        raise UserError(f"{where}, which climbs out with '..'; external data must lie in the model's folder")
    folder = model_file.parent.resolve()
    path = (model_file.parent / location).resolve()
    if not path.is_relative_to(folder):
        raise UserError(
            f"{where}, which is a link to {path}, outside the model's folder {folder}; "
            "copy the file into the folder instead of linking it"
        )
    return path


def _read(model_file: Path) -> memoryview:
    """The file's bytes (the steps that follow read the whole graph too)."""
    try:
        with open(model_file, "rb") as fh:
            return memoryview(fh.read())
    except FileNotFoundError:
        raise UserError(f"{model_file}: no such file") from None


def output_names(model_file: str | Path) -> list[str] | None:
    """The names of the graph's outputs, or None when the file is not an ONNX model."""
    names: list[str] = []
    try:
        for number, _, graph in _fields(_read(Path(model_file))):
            if number != 7 or not isinstance(graph, memoryview):  # ModelProto.graph
                continue
            for field, _, info in _fields(graph):
                if field == 12 and isinstance(info, memoryview):  # GraphProto.output: ValueInfoProto
                    names += [_text(v) for n, _, v in _fields(info) if n == 1 and isinstance(v, memoryview)]
    except ValueError:
        return None
    return names


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8", "replace")


def require_output(model_file: str | Path, name: str) -> None:
    """Refuse a graph with no output called `name` (this project's graphs end in 'logits'),
    naming the file as given, before any tool reads it further."""
    names = output_names(model_file)
    if names is not None and name not in names:
        raise UserError(f"{model_file}: outputs {names} | expected an output named '{name}'")


def external_data_files(model_file: str | Path) -> list[ExternalData]:
    """Every external-data file `model_file` names, each checked by the rule above.

    A file that is not an ONNX model is left for the step's own reader to report."""
    model_file = Path(model_file)
    try:
        tensors = list(_tensors(_read(model_file), "model"))
    except (ValueError, RecursionError):
        return []  # not a protobuf message: not ours to judge here
    found = []
    for name, location, entries in tensors:
        if location != EXTERNAL:
            continue
        path = check_location(model_file, name, entries.get("location", ""))
        where = f"{model_file}: the weights of {name!r}"
        offset = _whole(entries.get("offset", "0"), "offset", where)
        length = _whole(entries["length"], "length", where) if "length" in entries else None
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise UserError(
                f"{where} are stored in {path}, which is missing; copy the model's external-data files along with it"
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{where} are stored in {path}, which is not a regular file")
        needed = offset + (length or 0)
        if st.st_size < needed:
            raise UserError(
                f"{where} are stored in {path}, which is shorter than the {needed} bytes it needs; "
                "copy the model's external-data files along with it"
            )
        found.append(ExternalData(name, entries.get("location", ""), path, offset, length))
    return found
