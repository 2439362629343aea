"""Exit codes are named in one module, and every entry point's --help lists them."""

from __future__ import annotations

import ast

import pytest

from runtime.app.cli import exits
from tests.conftest import ROOT, run_cli


@pytest.mark.parametrize(
    "command",
    [("runtime",), ("runtime", "classify"), ("runtime", "parity"), ("export",), ("export", "triton"), ("calibration",)],
)
def test_every_entry_point_help_lists_the_exit_codes(command: tuple[str, ...]) -> None:
    res = run_cli(*command, "--help")
    assert res.returncode == 0, res.stderr
    assert "exit codes:" in res.stdout
    for code in (exits.OK, exits.BAD_INPUT, exits.PARTIAL, exits.OS_ERROR, exits.INTERRUPTED, exits.TERMINATED):
        assert f"\n  {code} " in res.stdout, (code, res.stdout[-600:])


COMMAND_MODULES = [*sorted((ROOT / "runtime" / "app" / "cli").glob("*.py")), ROOT / "export" / "__main__.py"]
COMMAND_MODULES += [ROOT / "calibration" / "__main__.py"]


def _returned_ints(path: object) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # type: ignore[attr-defined]
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        values = [node.value.body, node.value.orelse] if isinstance(node.value, ast.IfExp) else [node.value]
        found += [f"{path.name}:{node.lineno} return {v.value}" for v in values if isinstance(v, ast.Constant) and type(v.value) is int and v.value]
    return found


def test_no_command_returns_a_bare_exit_code() -> None:
    """`return 3` in a command means whatever its author thought; exits.PARTIAL says it."""
    assert [line for path in COMMAND_MODULES for line in _returned_ints(path)] == []
