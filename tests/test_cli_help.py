"""Every command line's --help: each option has help text, and each option with a default
value says what it is. The parsers are caught as each entry point's main() builds them (no
command runs), so a new option or a new script is covered at once."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

ENTRY_POINTS = ["runtime.app.cli.main", "export.__main__", "calibration.__main__"]
# Options whose help another change of the same issue writes; remove an entry once it has help.
SCRIPTS = sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])


class _Caught(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _parser_of(main: object, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    def catch(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Caught(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
    try:
        main([])  # type: ignore[operator]
    except _Caught as caught:
        return caught.parser
    raise AssertionError(f"{main} parsed no arguments")


def _walk(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{prog} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield prog, action


def _main(target: str | Path) -> object:
    if isinstance(target, str):
        return importlib.import_module(target).main
    spec = importlib.util.spec_from_file_location(f"_help_{target.stem}", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module.main


def _undocumented(action: argparse.Action) -> str | None:
    text = action.help or ""
    if not text.strip() or text == argparse.SUPPRESS:
        return "no help text"
    default = action.default
    if action.option_strings and default not in (None, False, [], argparse.SUPPRESS) and "default" not in text:
        return f"default {default!r} not stated"
    return None


@pytest.mark.parametrize("target", [*ENTRY_POINTS, *SCRIPTS], ids=lambda t: t if isinstance(t, str) else t.name)
def test_every_option_has_help_and_states_its_default(target: str | Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser_of(_main(target), monkeypatch)
    missing = [
        f"{prog} {'/'.join(action.option_strings) or action.dest}: {why}"
        for prog, action in _walk(parser, parser.prog)
        if (why := _undocumented(action))
    ]
    assert not missing, "\n".join(missing)


def test_runtime_lists_its_subcommands_in_one_order() -> None:
    """The pipeline's order everywhere: parity, classify, evaluate, bench (in --help, the
    module docstring and the README's command list)."""
    from runtime.app.cli.main import build_parser

    order = ["parity", "classify", "evaluate", "bench"]
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == order
    import runtime.app.cli.main as cli_main

    assert "{" + ",".join(order) + "}" in (cli_main.__doc__ or "")
    readme = (ROOT / "README.md").read_text()
    seen = [readme.find(f"python -m runtime {name} ") for name in order]
    assert all(i >= 0 for i in seen) and seen == sorted(seen), seen
