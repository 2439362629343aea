"""What every command line of the project shares: logging set-up, one-line errors, and the
argparse types that range-check every numeric option.

A number on the command line sizes memory, files and processes, so each one is parsed
strictly (ASCII digits only: `'²'.isdigit()` is true, and `float('１')` parses) and
checked against a documented range before any work; an out-of-range value ends the
command with one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from collections.abc import Callable

from ...core.errors import UserError, describe_os_error
from ...core.preprocessing import MAX_SIZE  # noqa: F401  (bench --size; model.json obeys the same)
from . import exits
from .log_repeats import flush_repeats, summarise_repeats
from .signals import Terminated, sigterm_raises

# The documented maxima of the numeric options.
MAX_BATCH = 4096  # images per batch
MAX_TOPK = 100_000  # before the model's class count is known; then topk <= classes
MAX_SECONDS = 3600.0  # bench: timed seconds per batch size
WORKERS_PER_CPU = 4  # --workers <= CPU count x this
VERBOSE_HELP = "log debug detail on stderr (default: info, or the level in CONVMIXER_LOG)"


def max_workers() -> int:
    """The most worker processes (or Ray actors) a --workers option may ask for."""
    return (os.cpu_count() or 1) * WORKERS_PER_CPU


class OptionError(UserError):
    """A command-line value out of its range or not a number; argparse passes it through,
    and run_parsed prints it on one line."""


_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _shown(text: str) -> str:
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def _whole(text: str) -> int | None:
    """`text` as an int when it is plainly one (optional sign, ASCII digits); else None."""
    digits = text.removeprefix("-").removeprefix("+") if text[:1] in "+-" else text
    if not digits or not (digits.isascii() and digits.isdigit()) or len(digits) > 30:
        return None
    return int(text)


def whole(option: str, low: int, high: int | Callable[[], int]) -> Callable[[str], int]:
    """argparse type: a whole number in [low, high] (`high` may be computed when parsing)."""

    def parse(text: str) -> int:
        top = high() if callable(high) else high
        value = _whole(text)
        if value is None or not low <= value <= top:
            raise OptionError(f"{option} {_shown(text)}: expected a whole number from {low} to {top}")
        return value

    return parse


def real(option: str, low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """argparse type: a finite decimal number in [low, high] ((low, high] when `low_open`)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        value = float(text) if _REAL.fullmatch(text) else math.nan
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            raise OptionError(f"{option} {_shown(text)}: expected a number in {interval}")
        return value

    return parse


def whole_list(option: str, low: int, high: int) -> Callable[[str], list[int]]:
    """argparse type: comma-separated whole numbers, each in [low, high] (e.g. 1,8,32)."""

    def parse(text: str) -> list[int]:
        values = [_whole(v.strip()) for v in text.split(",") if v.strip()]
        if not values or any(v is None or not low <= v <= high for v in values):
            raise OptionError(f"{option} {_shown(text)}: expected sizes from {low} to {high} like 1,8,32")
        return [v for v in values if v is not None]

    return parse


def height_width(option: str, low: int, high: int) -> Callable[[str], tuple[int, int]]:
    """argparse type: HxW, each side a whole number in [low, high] (e.g. 224x224)."""

    def parse(text: str) -> tuple[int, int]:
        sides = [_whole(v) for v in text.lower().split("x")]
        if len(sides) != 2 or any(v is None or not low <= v <= high for v in sides):
            raise OptionError(f"{option} {_shown(text)}: expected HxW, each side from {low} to {high}, e.g. 224x224")
        return sides[0] or 0, sides[1] or 0

    return parse


def setup_logging(verbose: bool = False) -> None:
    level = (
        logging.DEBUG if verbose else getattr(logging, os.environ.get("CONVMIXER_LOG", "INFO").upper(), logging.INFO)
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Third-party chatter (graph passes, optional-op registration) is not progress.
    for noisy in ("onnx_ir", "onnxscript", "torch", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    summarise_repeats()


def list_exit_codes(parser: argparse.ArgumentParser) -> None:
    """Put the exit codes (exits.EPILOG) at the end of `parser`'s --help and each subcommand's."""
    parsers = [parser]
    while parsers:
        p = parsers.pop()
        p.epilog = exits.EPILOG
        p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the table's lines
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())


def run_parsed(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, set up logging, and run the chosen command (args.func) with one-line errors."""
    list_exit_codes(parser)
    try:
        args = parser.parse_args(argv)
    except OptionError as exc:  # raised by the types above; argparse lets it through
        print(f"error: {exc}", file=sys.stderr)
        return exits.BAD_INPUT
    setup_logging(args.verbose)
    return guarded(lambda: int(args.func(args)))


def guarded(main: Callable[[], int]) -> int:
    """Run `main`; turn user-facing failures into one stderr line and a non-zero exit
    (runtime.app.cli.exits names each code)."""
    try:
        with sigterm_raises():
            try:
                return main()
            finally:
                flush_repeats()  # the counts before the closing line, which stays last
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.BAD_INPUT
    except OSError as exc:
        # Artifacts are written through runtime.core.atomic.atomic_path, so nothing half-written
        # is left behind; what remains to do is say which file and why, on one line.
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return exits.OS_ERROR
    except Terminated:
        print("error: terminated (SIGTERM); no partial artifact was kept", file=sys.stderr)
        return exits.TERMINATED
    except KeyboardInterrupt:
        print("error: interrupted; no partial artifact was kept", file=sys.stderr)
        return exits.INTERRUPTED

