"""The one-way import rule: what ships to a Jetson never pulls in torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


# --- the core never imports the application ----------------------------------------------

CORE = ROOT / "runtime" / "core"
# What serving an engine must not load: the application, the command line's modules, tqdm.
NOT_IN_CORE = ("runtime.app", "argparse", "tqdm")


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, at the top or inside a function, absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found += [(node.lineno, name)] + [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


def test_the_core_never_imports_the_application() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in sorted(CORE.rglob("*.py"))
        for line, name in _imported_names(path)
        if any(name == bad or name.startswith(bad + ".") for bad in NOT_IN_CORE)
    ]
    assert offenders == []


def test_only_the_preprocessing_module_imports_pillow() -> None:
    """Pillow is loaded when an image is preprocessed (preprocess.py, and resample.py, the
    numpy reference of Pillow's resampling, which reads Pillow's version), not when an
    engine is served."""
    users = sorted(
        str(path.relative_to(CORE))
        for path in CORE.rglob("*.py")
        if any(name.split(".")[0] == "PIL" for _, name in _imported_names(path))
    )
    assert users == ["preprocess.py", "resample.py"]
