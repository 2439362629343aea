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


# --- what serving an engine loads -------------------------------------------------------

SERVING_LINES = 1500  # of this project's code, for import runtime + load + manifest + parity + the TensorRT runner


def _import_cost() -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location("import_cost", ROOT / "scripts" / "import_cost.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serving_an_engine_imports_little_and_no_command_line_code() -> None:
    cost = _import_cost()
    result = cost.measure()  # type: ignore[attr-defined]
    lines = sum(n for _, n in result["rows"])
    print(f"\nserving an engine imports {lines} lines in {len(result['rows'])} modules of this project")
    assert result["unwanted"] == []
    assert not any(name.startswith("runtime.app") for name, _ in result["rows"])
    assert lines <= SERVING_LINES, result["rows"]


_ACTIVATED = """
import json, pathlib, sys
import numpy as np
from tests.fakes import fake_tensorrt
import runtime
class Patch:  # what fake_tensorrt.install needs of pytest's monkeypatch (pytest imports argparse)
    def setitem(self, d, k, v): d[k] = v
    def setattr(self, obj, name, value, raising=True): setattr(obj, name, value)
fake_tensorrt.install(Patch())
d = pathlib.Path(sys.argv[1])
engine = fake_tensorrt.write_engine(d / "model.engine", [[[1, 3, 32, 32], [2, 3, 32, 32], [4, 3, 32, 32]]], d / "model.onnx")
with runtime.load(engine) as runner:
    runner.infer(np.zeros((2, 3, 32, 32), np.float32))
    ok, _ = runtime.core.golden.run_parity(engine), None
rows = [(n, len(pathlib.Path(m.__file__).read_text().splitlines())) for n, m in sorted(sys.modules.items())
        if n.split(".")[0] == "runtime" and getattr(m, "__file__", None)]
print(json.dumps({"rows": rows, "unwanted": [m for m in ("argparse", "tqdm", "PIL") if m in sys.modules]}))
"""


def test_activating_an_engine_loads_no_command_line_code(digits_export: Path, tmp_path: Path) -> None:
    """Activate an engine (the test double's TensorRT and CUDA), infer and check parity: the
    whole serving path, as far as a CPU can run it. Its figure is printed (-s)."""
    import json
    import shutil

    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)
    out = subprocess.run(
        [sys.executable, "-c", "import runtime.core.golden\n" + _ACTIVATED, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    lines = sum(n for _, n in result["rows"])
    print(f"\nactivating an engine, inferring and checking parity loads {lines} lines in {len(result['rows'])} modules")
    assert not any(name.startswith("runtime.app") for name, _ in result["rows"])
    assert result["unwanted"] == []
