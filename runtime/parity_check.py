"""`python -m runtime parity`: a model file against the golden PyTorch logits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from . import load
from .artifacts import golden_path, precision_of
from .errors import UserError
from .manifest import find_manifest
from .parity import ParityResult, compare

log = logging.getLogger(__name__)


def load_golden(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    if not path.is_file():
        raise UserError(
            f"{path}: no such file; `python -m export onnx` writes golden.npz beside model.onnx (or pass --golden)"
        )
    try:
        with np.load(path) as golden:
            pairs = []
            i = 0
            while f"input_{i}" in golden.files:
                pairs.append((golden[f"input_{i}"], golden[f"logits_{i}"]))
                i += 1
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: not a golden.npz ({exc})") from None
    if not pairs:
        raise UserError(f"{path}: holds no input_0/logits_0 arrays")
    return pairs


def run_parity(
    model_file: Path,
    golden: Path | None = None,
    backend: str | None = None,
    precision: str | None = None,
    load_options: dict[str, Any] | None = None,
) -> ParityResult:
    """Run every golden input and compare all logits at once under the precision's tolerances.

    The golden logits belong to the model.onnx that model.json describes: loading an
    engine checks that it was built from that export (engine_meta.check_provenance). An
    ONNX file is measured as it is, so an edited graph shows up as a parity failure."""
    if not Path(model_file).is_file():
        raise UserError(f"{model_file}: no such file")
    precision = precision or precision_of(str(model_file))
    pairs = load_golden(golden or golden_path(model_file))
    refs, outs, skipped = [], [], []
    with load(model_file, backend, **(load_options or {})) as runner:
        for x, ref in pairs:
            if not runner.accepts(x.shape):
                skipped.append("x".join(map(str, x.shape)))
                continue
            outs.append(runner.infer(x))
            refs.append(ref)
    if not outs:
        raise UserError(f"{model_file}: no golden input shape ({', '.join(skipped)}) fits the engine's profiles")
    result = compare(np.concatenate(refs), np.concatenate(outs), precision)
    if skipped:
        log.warning("golden shapes %s are outside the engine's profiles; compared the others", ", ".join(skipped))
        result.note = f"golden shapes {', '.join(skipped)} outside the engine profiles were not run"
    manifest = find_manifest(model_file)
    if manifest and str(manifest.data.get("golden", {}).get("source", "")).startswith("random"):
        result.note = "; ".join(filter(None, [result.note, "golden inputs are random noise"]))
        if precision == "int8":
            result.note += (
                ", outside the calibration data's range, so INT8 parity is not meaningful on them; "
                "export with --golden-images"
            )
    return result
