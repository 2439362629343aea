#!/usr/bin/env bash
# Install NVIDIA's TensorRT type stubs so mypy can check the TensorRT code on a machine
# without TensorRT (CI has none: TensorRT's pip package downloads from NVIDIA's own index).
#   tools/install-tensorrt-stubs.sh [PYTHON]
# Three mends, each needed with tensorrt-stubs 10.13.0.35.1:
#  1. --no-deps: the stubs depend on `tensorrt`, whose install cannot succeed here.
#  2. The stub folders ship without py.typed, so mypy would ignore them: add the marker.
#  3. Two stub lines are not valid Python (a parameter named `in`; a required parameter
#     after defaulted ones): rename the first, give the second a default.
set -euo pipefail
PY=${1:-python3}
"$PY" -m pip install -q --no-deps "tensorrt-stubs==10.13.0.35.1"
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
touch "$site/tensorrt/py.typed" "$site/tensorrt_bindings/py.typed"
sed -i -E \
  -e 's/(def [a-z_]+\(self[^,]*, )in: /\1in_: /' \
  -e 's/power: Weights = None, channel_axis: int\)/power: Weights = None, channel_axis: int = 0)/' \
  "$site/tensorrt_bindings/tensorrt.pyi"
"$PY" - "$site" <<'PY'
import ast, pathlib, sys
stub = pathlib.Path(sys.argv[1]) / "tensorrt_bindings" / "tensorrt.pyi"
ast.parse(stub.read_text())  # fails loudly if a future stub release needs another mend
PY
echo "tensorrt-stubs ready in $site (TensorRT 10.13 API)"
