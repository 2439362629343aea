"""Parity of a model file against golden.npz, the PyTorch logits: what `python -m runtime parity` runs."""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .artifacts import (
    ONNX_NAME,
    calibration_path,
    golden_path,
    graph_record_path,
    is_cpu_int8,
    model_path,
    precision_of,
)
from .errors import UserError
from .io import read_json, sha256_file
from .loader import TensorRTOptions, load
from .manifest import Manifest, find_manifest
from .memory import check_host_memory, declared_bytes, npz_declared
from .parity import ParityResult, compare
from .preprocessing import MAX_SIZE

log = logging.getLogger(__name__)

ACTIVATION_FACTOR = 8  # the model's working memory on an input, in multiples of the input's bytes


def load_golden(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """golden.npz's (input_i, logits_i) pairs, checked: a truncated or inconsistent file is
    refused on one line naming it, never a traceback or a comparison of the wrong things."""
    if not path.is_file():
        raise UserError(
            f"{path}: no such file; `python -m export onnx` writes golden.npz beside model.onnx (or pass --golden)"
        )
    try:
        _check_declared(path, npz_declared(path))
        with np.load(path, allow_pickle=False) as golden:
            pairs = []
            i = 0
            while f"input_{i}" in golden.files:
                pairs.append((golden[f"input_{i}"], golden[f"logits_{i}"]))
                i += 1
    except PermissionError:
        raise  # the operating system said no: exit 74, not "damaged"
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"{path}: not a readable golden.npz, truncated or damaged? ({exc})") from None
    if not pairs:
        raise UserError(f"{path}: holds no input_0/logits_0 arrays")
    for i, (x, ref) in enumerate(pairs):
        if x.ndim != 4 or x.dtype not in (np.float32, np.uint8):
            raise UserError(f"{path}: input_{i} is {x.dtype} {x.shape} | expected a float32 or uint8 4-D batch")
        if ref.ndim != 2 or ref.shape[0] != x.shape[0] or not np.issubdtype(ref.dtype, np.floating):
            raise UserError(f"{path}: logits_{i} is {ref.dtype} {ref.shape} | expected [{x.shape[0]}, classes] floats")
        if ref.shape[1] != pairs[0][1].shape[1]:
            raise UserError(f"{path}: logits_{i} has {ref.shape[1]} classes, logits_0 has {pairs[0][1].shape[1]}")
        if not (np.isfinite(ref).all() and (x.dtype == np.uint8 or np.isfinite(x).all())):
            raise UserError(f"{path}: input_{i} or logits_{i} holds NaN or infinity")
    return pairs


def _check_declared(path: Path, declared: dict[str, tuple[tuple[int, ...], np.dtype[np.generic]]]) -> None:
    """Refuse, from the .npy headers alone, golden arrays the memory budget cannot hold:
    each input is read whole, and the model's activations on it take several times more."""
    inputs = {k: v for k, v in declared.items() if k.startswith("input_")}
    for key, (shape, _) in inputs.items():
        if len(shape) == 4 and max(shape[1:]) > MAX_SIZE:
            raise UserError(f"{path}: {key} declares {'x'.join(map(str, shape))} | each side at most {MAX_SIZE}")
    total = sum(declared_bytes(shape, dtype) for shape, dtype in declared.values())
    # ConvMixer keeps a few activations of `dim` channels per patch: bound them by a factor
    # of the input, as a batch's memory is bounded for --batch.
    total += ACTIVATION_FACTOR * max((declared_bytes(s, d) for s, d in inputs.values()), default=0)
    largest = max(inputs.items(), key=lambda kv: declared_bytes(*kv[1]), default=None)
    what = f"{path} ({largest[0]} {'x'.join(map(str, largest[1][0]))} {largest[1][1]})" if largest else str(path)
    check_host_memory(total, what, "golden inputs are a few small batches; re-export it with `python -m export onnx`")


def check_onnx_provenance(model_file: Path, manifest: Manifest | None, precision: str) -> str:
    """Refuse an ONNX graph that is not the one the golden logits were made for, naming both
    hashes (engines get the same check from engine_meta.check_provenance).

    model.json records the sha256 of model.onnx, so an FP32 graph must have it.
    calibration.json records the INT8 graph it wrote and the model.onnx it came from, and
    `export fp16` records the same in model.fp16.onnx.json (artifacts.graph_record_path), so
    those graphs must be the ones recorded, from that model.onnx. A graph with no record
    (an older export) is measured as it is, and the returned note says so ("" when all was checked)."""
    recorded = manifest.data.get("onnx_sha256") if manifest else None
    if manifest is None or not recorded:
        return "model.json records no ONNX hash; provenance not checked"
    if precision == "fp32":
        actual = sha256_file(model_file)
        if actual != recorded:
            raise UserError(
                f"{model_file}: sha256 {actual}, but {manifest.path} records {ONNX_NAME} as {recorded}; "
                "the golden logits belong to another export (re-export, or pass its --golden)"
            )
        return ""
    report = calibration_path(model_file) if precision == "int8" else graph_record_path(model_file)
    if precision not in ("int8", "fp16") or not report.is_file():
        return f"no recorded hash for {model_file.name}; provenance not checked"
    data = read_json(report)
    key = "cpu_int8_onnx_sha256" if is_cpu_int8(model_file) else f"{precision}_onnx_sha256"
    made, origin = (data.get(key), data.get("source_onnx_sha256")) if isinstance(data, dict) else ("", "")
    if made:
        actual = sha256_file(model_file)
        if actual != made:
            raise UserError(
                f"{model_file}: sha256 {actual}, but {report} records the {precision.upper()} graph it wrote as {made}"
            )
    if origin and origin != recorded:
        raise UserError(
            f"{model_file}: {report} says it came from a {ONNX_NAME} of sha256 {origin}, "
            f"but {manifest.path} records {recorded}; recalibrate"
        )
    return ""


def run_parity(
    model_file: Path,
    golden: Path | None = None,
    backend: str | None = None,
    precision: str | None = None,
    options: TensorRTOptions | None = None,
    cpu_graph: bool = True,
) -> ParityResult:
    """Run every golden input and compare all logits at once under the precision's tolerances.

    The golden logits belong to the model.onnx that model.json describes: loading an
    engine checks that it was built from that export (engine_meta.check_provenance). An
    ONNX file is measured as it is, so an edited graph shows up as a parity failure."""
    if not Path(model_file).is_file():
        raise UserError(f"{model_file}: no such file")
    model_file = model_path(model_file)  # a link is followed: golden.npz and the rest are the target's
    precision = precision or precision_of(str(model_file))
    manifest = find_manifest(model_file)
    provenance = ""
    runner = load(model_file, backend, options, cpu_graph=cpu_graph)  # the file it runs may be the CPU INT8 graph
    if Path(model_file).suffix == ".onnx" and golden is None:  # a golden passed in is the caller's to vouch for
        provenance = check_onnx_provenance(runner.model_file, manifest, precision)
    golden = golden or golden_path(model_file)
    pairs = load_golden(golden)
    refs, outs, skipped = [], [], []
    with runner:
        for x, ref in pairs:
            if not runner.accepts(x.shape):
                skipped.append("x".join(map(str, x.shape)))
                continue
            out = runner.infer(x)
            if out.shape != ref.shape:
                raise UserError(f"{golden}: logits_* are {ref.shape}, {model_file} gives {out.shape}; another model's?")
            outs.append(out)
            refs.append(ref)
    if not outs:
        raise UserError(f"{model_file}: no golden input shape ({', '.join(skipped)}) fits the engine's profiles")
    result = compare(np.concatenate(refs), np.concatenate(outs), precision)
    if skipped:
        log.warning("golden shapes %s are outside the engine's profiles; compared the others", ", ".join(skipped))
        result.note = f"golden shapes {', '.join(skipped)} outside the engine profiles were not run"
    if provenance:
        result.note = "; ".join(filter(None, [result.note, provenance]))
    if manifest and str(manifest.data.get("golden", {}).get("source", "")).startswith("random"):
        result.note = "; ".join(filter(None, [result.note, "golden inputs are random noise"]))
        if precision == "int8":
            result.note += (
                ", outside the calibration data's range, so INT8 parity is not meaningful on them; "
                "export with --golden-images"
            )
    return result
