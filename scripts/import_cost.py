"""What serving an engine imports of this project: the modules and their lines.

A Jetson user serves an engine with `import runtime`, `runtime.load`, the manifest, parity
and the TensorRT runner. This imports exactly those in a fresh interpreter and prints each
project module loaded with its line count, the total, and whether argparse, tqdm or Pillow
came along (none should: the core imports no command-line code, and Pillow only when an
image is preprocessed). The engine's machinery (lanes, CUDA, the sidecar's checks) is
imported when a runner activates, so it is not in this figure; tests/runtime/
test_import_rule.py also measures what activating an engine loads (against the test double).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVING = [
    "runtime",
    "runtime.core.loader",
    "runtime.core.manifest",
    "runtime.core.parity",
    "runtime.core.golden",
    "runtime.core.backends.tensorrt",
]
NOT_WANTED = ("argparse", "tqdm", "PIL")

_PROBE = """
import json, sys, importlib, pathlib
for name in {modules!r}:
    importlib.import_module(name)
rows = []
for name, module in sorted(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if name.split(".")[0] == "runtime" and path:
        rows.append((name, len(pathlib.Path(path).read_text(encoding="utf-8").splitlines())))
print(json.dumps({{"rows": rows, "unwanted": [m for m in {unwanted!r} if m in sys.modules]}}))
"""


def measure(modules: list[str] = SERVING) -> dict[str, object]:
    """{"rows": [(module, lines)], "unwanted": [...]} of a fresh interpreter importing `modules`."""
    code = _PROBE.format(modules=modules, unwanted=NOT_WANTED)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the measurement as JSON (default: a table)")
    args = parser.parse_args(argv)
    result = measure()
    rows = [(str(name), int(lines)) for name, lines in result["rows"]]  # type: ignore[attr-defined]
    if args.json:
        print(json.dumps(result))
        return 0
    for name, lines in rows:
        print(f"{lines:6d}  {name}")
    unwanted = list(result["unwanted"])  # type: ignore[call-overload]
    also = f"also loaded: {', '.join(unwanted)}" if unwanted else f"none of {', '.join(NOT_WANTED)} loaded"
    print(f"{sum(n for _, n in rows):6d}  lines in {len(rows)} modules; {also}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
