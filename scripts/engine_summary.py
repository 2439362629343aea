"""Print the table that ends `make engine`: engine, flavour, targets, layer precisions, parity, build seconds.

python scripts/engine_summary.py build/convmixer_768_32

Parity is the engine's own (model.<p>.parity.json) where a GPU ran it, else that of the
ONNX graph it was built from (model.<p>.onnx-parity.json, ONNX Runtime), marked "onnx".
Exit 0 when every engine has a passing parity of one kind or the other, 1 when not,
2 when the folder holds no engine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.app.cli.options import guarded, setup_logging  # noqa: E402
from runtime.core.artifacts import (  # noqa: E402
    INT8,
    MANIFEST_NAME,
    ONNX_SUFFIX,
    PRECISIONS,
    engine_name,
    layers_path,
    parity_path,
)
from runtime.core.engine_meta import read_sidecar  # noqa: E402
from runtime.core.errors import UserError  # noqa: E402
from runtime.core.io import read_json, read_json_object  # noqa: E402

ONNX_NOTE = (
    "checked 'onnx': that engine was not run (no GPU here runs it); "
    "the ONNX graph it was built from was checked with ONNX Runtime"
)
LAYERS_NOTE = (
    "layers by precision: each engine layer once, by the precision it computes in (int8 when every input "
    "is int8, else its narrowest float input). An INT8 engine's quantize/dequantize and reformat layers count "
    "too, so fp32 and fp16 layers beside int8 are expected; python -m export layers ENGINE lists each one"
)
RANDOM_NOTE = (
    "RANDOM WEIGHTS ({model}: no checkpoint): parity shows the engines match the graph, "
    "but their predictions are meaningless"
)


def random_weights(build_dir: Path) -> str | None:
    """The model's name when model.json says its weights are random, else None."""
    path = build_dir / MANIFEST_NAME
    data = read_json(path) if path.is_file() else None
    weights = data.get("weights") if isinstance(data, dict) else None
    if isinstance(weights, dict) and weights.get("source") == "random-init":
        return str(data.get("model") if isinstance(data, dict) else "?")
    return None


def find_engines(build_dir: Path) -> list[Path]:
    """The engines of every precision in `build_dir`, by name; a UserError when there are none."""
    if not build_dir.is_dir():
        raise UserError(f"{build_dir}: no such folder (expected build/<model>/ from make engine)")
    engines = sorted(build_dir / engine_name(p) for p in PRECISIONS if (build_dir / engine_name(p)).is_file())
    if not engines:
        names = ", ".join(engine_name(p) for p in PRECISIONS)
        raise UserError(f"{build_dir}: no engine here ({names}); build them with make engine")
    return engines


def _json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "a JSON report")


def parity(engine: Path) -> tuple[str, dict[str, Any]]:
    """("engine" | "onnx" | "-", the parity result) for `engine`, its own first."""
    candidates = (("engine", parity_path(engine)), ("onnx", parity_path(engine.with_suffix(ONNX_SUFFIX))))
    for kind, path in candidates:
        if path.is_file():
            return kind, _json(path)
    return "-", {}


def summary_rows(build_dir: Path) -> list[tuple[str, str, str, str, str, str, float]]:
    """One row per engine: name, flavour, targets, layers by precision, parity kind, verdict, build s."""
    rows = []
    for engine in find_engines(build_dir):
        meta = read_sidecar(engine)
        report = layers_path(engine)
        counts = _json(report).get("summary", {}) if report.is_file() else {}
        kind, result = parity(engine)
        verdict = ("PASS" if result.get("passed") else "FAIL") if result else "-"
        targets = ",".join(meta.target_compute_capabilities or [meta.compute_capability or "?"])
        layers = " ".join(f"{p}:{n}" for p, n in counts.items()) or "-"
        rows.append((engine.name, meta.flavour, targets, layers, kind, verdict, float(meta.build_seconds)))
    return rows


def print_table(rows: list[tuple[str, str, str, str, str, str, float]], random_model: str | None = None) -> None:
    if random_model is not None:
        print(RANDOM_NOTE.format(model=random_model))
    head = (
        f"{'engine':<20} {'flavour':<13} {'targets':<22} {'layers by precision':<24} "
        f"{'checked':<9} {'parity':<6} {'build s':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, flavour, targets, layers, kind, verdict, secs in rows:
        print(f"{name:<20} {flavour:<13} {targets:<22} {layers:<24} {kind:<9} {verdict:<6} {secs:>7.1f}")
    if any(r[0] == engine_name(INT8) for r in rows):
        print(LAYERS_NOTE)
    if any(r[4] == "onnx" for r in rows):
        print(ONNX_NOTE)


def run(build_dir: Path) -> int:
    rows = summary_rows(build_dir)
    print_table(rows, random_weights(build_dir))
    return 0 if all(r[5] == "PASS" for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="engine_summary.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("build_dir", type=Path, help="build/<model>/ holding model.<precision>.engine files")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail on stderr")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return guarded(lambda: run(args.build_dir))


if __name__ == "__main__":
    sys.exit(main())
