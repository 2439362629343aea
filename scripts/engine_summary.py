"""Print the table that ends `make engine`: engine, flavour, targets, layer precisions, parity, build seconds.

python scripts/engine_summary.py build/convmixer_768_32

Parity is the engine's own (model.<p>.parity.json) where a GPU ran it, else that of the
ONNX graph it was built from (model.<p>.onnx-parity.json, ONNX Runtime), marked "onnx".
Exit 1 unless every engine has a passing parity of one kind or the other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _parity(engine: Path) -> tuple[str, dict[str, object]]:
    for kind, suffix in (("engine", ".parity.json"), ("onnx", ".onnx-parity.json")):
        path = engine.with_name(engine.name.replace(".engine", suffix))
        if path.is_file():
            return kind, json.loads(path.read_text())
    return "-", {}


def main() -> int:
    out = Path(sys.argv[1])
    rows = []
    for engine in sorted(out.glob("model.*.engine")):
        side = json.loads(engine.with_name(engine.name + ".json").read_text())
        layers_file = engine.with_name(engine.name.replace(".engine", ".layers.json"))
        summary = json.loads(layers_file.read_text())["summary"] if layers_file.is_file() else {}
        kind, parity = _parity(engine)
        verdict = ("PASS" if parity.get("passed") else "FAIL") if parity else "-"
        targets = ",".join(side.get("target_compute_capabilities") or [side.get("compute_capability") or "?"])
        layers = " ".join(f"{p}:{n}" for p, n in summary.items()) or "-"
        rows.append((engine.name, side.get("flavour", "tensorrt"), targets, layers, kind, verdict, side["build_seconds"]))
    head = f"{'engine':<20} {'flavour':<13} {'targets':<22} {'layers by precision':<24} {'parity of':<9} {'parity':<6} {'build s':>7}"
    print(head)
    print("-" * len(head))
    for name, flavour, targets, layers, kind, verdict, secs in rows:
        print(f"{name:<20} {flavour:<13} {targets:<22} {layers:<24} {kind:<9} {verdict:<6} {secs:>7.1f}")
    if any(r[4] == "onnx" for r in rows):
        print("parity of 'onnx': that engine was not run (no GPU here runs it); the ONNX graph it was built from was checked with ONNX Runtime")
    return 0 if rows and all(r[5] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
