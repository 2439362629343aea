"""What every command line of the project shares: logging set-up and one-line errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from .errors import UserError, describe_os_error

EXIT_OS_ERROR = 74


def setup_logging(verbose: bool = False) -> None:
    level = (
        logging.DEBUG if verbose else getattr(logging, os.environ.get("CONVMIXER_LOG", "INFO").upper(), logging.INFO)
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Third-party chatter (graph passes, optional-op registration) is not progress.
    for noisy in ("onnx_ir", "onnxscript", "torch", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def run_parsed(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, set up logging, and run the chosen command (args.func) with one-line errors."""
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    return guarded(lambda: int(args.func(args)))


def guarded(main: Callable[[], int]) -> int:
    """Run `main`; turn user-facing failures into one stderr line and a non-zero exit.

    Exit codes: 0 ok, 1 the command ran but its check failed (returned by `main`),
    2 bad input or missing dependency, 74 an operating-system error (read-only or full
    disk, missing permission; sysexits' EX_IOERR), 130 interrupted.
    """
    try:
        return main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Artifacts are written through runtime.io.atomic_path, so nothing half-written
        # is left behind; what remains to do is say which file and why, on one line.
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_OS_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; no partial artifact was kept", file=sys.stderr)
        return 130


def batch_sizes(text: str, flag: str = "--batch", minimum: int = 1) -> list[int]:
    """`--batch 1,8,32` as [1, 8, 32]: the size lists of bench and the benchmarks."""
    try:
        sizes = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < minimum:
        raise UserError(f"{flag} {text}: expected comma-separated whole numbers >= {minimum}, like 1,8,32")
    return sizes
