"""The one-way import rule: what ships to a Jetson never pulls in torch."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FORBIDDEN = ("torch", "convmixer", "export", "calibration")


@pytest.mark.parametrize(
    "module",
    [
        "runtime",
        "runtime.app.cli.main",
        "runtime.core.backends.tensorrt",
        "runtime.core.backends.onnxruntime",
        "runtime.core.backends.cuda",
        "runtime.app.classify",
        "runtime.app.bench",
        "runtime.app.evaluate",
        "runtime.app.images.pipeline",
    ],
)
def test_runtime_imports_without_torch(module: str) -> None:
    code = f"import sys, {module}; bad = [m for m in {FORBIDDEN!r} if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_runtime_source_imports_torch_even_lazily() -> None:
    """Also imports inside functions, which the subprocess check above cannot see."""
    offenders = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require" and node.args:
                arg = node.args[0]
                names = [arg.value] if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else []
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
