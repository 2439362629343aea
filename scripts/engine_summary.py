"""Print the table that ends `make engine`: artifact, precision, parity, build seconds.

python scripts/engine_summary.py build/convmixer_768_32
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    out = Path(sys.argv[1])
    rows = []
    for engine in sorted(out.glob("model.*.engine")):
        side = json.loads(engine.with_name(engine.name + ".json").read_text())
        parity_file = engine.with_name(engine.name.replace(".engine", ".parity.json"))
        parity = json.loads(parity_file.read_text()) if parity_file.is_file() else {}
        verdict = "PASS" if parity.get("passed") else ("FAIL" if parity else "-")
        rows.append(
            (
                engine.name,
                side["precision"],
                verdict,
                parity.get("max_abs", float("nan")),
                parity.get("min_cosine", float("nan")),
                parity.get("top1_agreement", float("nan")),
                side["build_seconds"],
            )
        )
    head = f"{'artifact':<22} {'precision':<9} {'parity':<6} {'max|err|':>9} {'cos min':>9} {'top-1 agr':>9} {'build s':>8}"
    print(head)
    print("-" * len(head))
    for name, prec, verdict, err, cos, top1, secs in rows:
        print(f"{name:<22} {prec:<9} {verdict:<6} {err:>9.3g} {cos:>9.5f} {top1:>9.1%} {secs:>8.1f}")
    return 0 if rows and all(r[2] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
