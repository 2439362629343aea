"""What `export triton` may write, and where: names, labels, ownership, staging.

- A model name and the labels go into config.pbtxt (protobuf text format) and labels.txt
  (one label a line). A name is a plain folder name without control characters; `"` and
  `\\` are escaped in config.pbtxt. A label with a line break would split in labels.txt:
  refused.
- A model folder this command writes holds a marker file (MARKER). It replaces an existing
  REPO/<name> only when that folder holds the marker: anything else there (a user's
  folder, a plain file, a link) is refused, never deleted.
- The new folder is staged on the repository's own file system (a mounted volume cannot
  take a rename from elsewhere) and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from runtime.core.artifacts import FP16, FP32, INT8, ONNX_NAME, engine_path_for, onnx_for_precision
from runtime.core.engine_meta import read_sidecar
from runtime.core.errors import UserError
from runtime.core.flavours import TENSORRT
from runtime.core.manifest import OUTPUT_NAME, Manifest
from runtime.core.onnx_files import external_data_files

MARKER = ".written-by-export-triton"  # in each model folder this command writes


def model_name(asked: str | None, manifest: Manifest) -> str:
    """--name, else model.json's "model"; a plain folder name Triton can load, or a UserError."""
    if asked is None:
        raw = manifest.data.get("model")
        if not isinstance(raw, str) or not raw:
            raise UserError(f"{manifest.path}: \"model\" is {json.dumps(raw)}, not a name; pass --name")
        name, what = raw, f"{manifest.path.name}'s model name"
    else:
        name, what = asked, "--name"
    bad = [ch for ch in name if ord(ch) < 0x20 or ord(ch) == 0x7F]
    if not name or "/" in name or name.startswith(".") or bad:
        raise UserError(
            f"{what} {name!r}: a Triton model name is a plain folder name (no '/', leading '.' "
            "or control characters such as a line break)"
        )
    if len(os.fsencode(name)) > 200:
        raise UserError(f"{what} {name[:40]!r}…: longer than 200 bytes; pass a shorter --name")
    return name


def pbtxt_string(text: str) -> str:
    """`text` as a quoted string of protobuf's text format."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def labels_text(labels: list[str], where: Path) -> str:
    """labels.txt: exactly one line per class."""
    for i, label in enumerate(labels):
        if "\n" in label or "\r" in label or "\x0b" in label or "\x0c" in label or "\x85" in label:
            raise UserError(
                f"{where}: label {i} ({label!r}) holds a line break; labels.txt has one label a line, so "
                "Triton would number the classes wrongly. Edit the label"
            )
    return "".join(f"{label}\n" for label in labels)


def refuse_foreign(target: Path) -> None:
    """Refuse to replace `target` unless it is a model folder this command wrote."""
    if not os.path.lexists(target):
        return
    marker = target / MARKER
    if target.is_symlink() or not target.is_dir():
        kind = "a link" if target.is_symlink() else "a file"
        raise UserError(f"{target}: {kind} that export triton did not write; remove it or choose another --name")
    if marker.is_symlink() or not marker.is_file():
        raise UserError(
            f"{target}: a folder export triton did not write (no {MARKER} in it); it is left as it is: "
            "remove it yourself or choose another --name"
        )


def staging_parent(repo: Path) -> Path:
    """Where to build the new folder: beside REPO when that is on REPO's file system (Triton
    never sees it), else inside REPO as a hidden folder (REPO is a mount point)."""
    try:
        same = os.stat(repo).st_dev == os.stat(repo.resolve().parent).st_dev
    except OSError:
        same = False
    return repo.resolve().parent if same and os.access(repo.resolve().parent, os.W_OK) else repo


def copy_model_file(artifact: Path, version_dir: Path, name: str) -> None:
    """The engine or graph as `name` in `version_dir`, and a graph's external-data files
    with it, at the places the graph names (checked by the one rule, so all lie inside)."""
    shutil.copyfile(artifact, version_dir / name)
    if artifact.suffix != ".onnx":
        return
    for data in external_data_files(artifact):
        dest = version_dir / data.location
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.copyfile(data.path, dest)


BEST_FIRST = (INT8, FP16, FP32)  # with no --precision: the most compact precision the folder can serve


def pick_precision(build_dir: Path, fmt: str | None) -> str:
    """The first of int8, fp16, fp32 with an artifact `find_artifact` would serve (an engine
    with --format engine, a graph with --format onnx, else a TensorRT engine or a graph);
    fp32 when there is none, for which find_artifact says what to build."""
    for precision in BEST_FIRST:
        onnx = onnx_for_precision(build_dir / ONNX_NAME, precision)
        engine = engine_path_for(onnx)
        servable_engine = engine.is_file() and (fmt == "engine" or read_sidecar(engine).flavour == TENSORRT)
        if (fmt != "onnx" and servable_engine) or (fmt != "engine" and onnx.is_file()):
            return precision
    return FP32  # nothing to serve: find_artifact says what to build first


def check_width(onnx_path: Path, graph: object, manifest: Manifest, classes: int) -> None:
    """Refuse a graph whose logits are not as wide as model.json's classes."""
    output = next((o for o in graph.output if o.name == OUTPUT_NAME), None)  # type: ignore[attr-defined]
    if output is None:
        raise UserError(f"{onnx_path}: no output named '{OUTPUT_NAME}'; the graph is not one `python -m export` wrote")
    if classes < 1:
        raise UserError(f"{manifest.path}: no labels and no arch.num_classes; cannot size the output '{OUTPUT_NAME}'")
    dims = output.type.tensor_type.shape.dim
    width = dims[-1].dim_value if len(dims) and dims[-1].HasField("dim_value") else None
    if width is not None and width != classes:
        raise UserError(
            f"{onnx_path}: output '{OUTPUT_NAME}' has {width} classes, but {manifest.path.name} has {classes}; "
            "the graph and model.json come from different exports"
        )
