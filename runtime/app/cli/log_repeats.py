"""Repeated warnings become one line with a count; every copy is still there with -v.

Libraries warn once per tensor or layer: onnxconverter-common's "the float32 number ...
will be truncated to -1e-07" (dozens per FP16 conversion), TensorRT's "Converting conv
activation scales to fp32" (one per layer). Printed in full they bury the one warning that
matters. Here the first of each kind is shown; the others are held back (shown when the
log level is DEBUG), and when the command ends one line says how many there were.

Two warnings are of one kind when they differ only in numbers and quoted names.
"""

from __future__ import annotations

import atexit
import logging
import re
from collections import Counter

_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)


def kind_of(message: str) -> str:
    """The message with its numbers and quoted names blanked out."""
    return _VARYING.sub("#", message.splitlines()[0] if message else message)


class RepeatSummary(logging.Filter):
    """A handler filter: the first WARNING of each kind passes, repeats are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.first: dict[tuple[str, str], str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: let the handler report it as logging does
            return True
        key = (record.name, kind_of(message))
        self.counts[key] += 1
        if self.counts[key] == 1:
            self.first[key] = message.splitlines()[0]
            return True
        return False

    def summary(self) -> list[str]:
        """One line per kind that repeated."""
        return [
            f"{self.first[key]} ... and {n - 1} more like it (-v or CONVMIXER_LOG=DEBUG shows each)"
            for key, n in self.counts.items()
            if n > 1
        ]

    def flush(self) -> None:
        """Say how many of each kind were held back, and start counting afresh."""
        lines = self.summary()
        self.counts.clear()
        self.first.clear()
        for line in lines:
            logging.getLogger("repeats").warning("%s", line)


_installed: RepeatSummary | None = None  # one per process: setup_logging may run more than once


def flush_repeats() -> None:
    """Print the held-back counts now (before a command's closing line), if summarising."""
    if _installed is not None:
        _installed.flush()


def summarise_repeats() -> RepeatSummary:
    """Put a RepeatSummary on the root logger's handlers (Python warnings included, through
    logging); returns it. The command flushes it before its last line (cli_support.guarded);
    the process's exit flushes what a command that never got there held back."""
    global _installed
    logging.captureWarnings(True)
    if _installed is None:
        _installed = RepeatSummary()
        atexit.register(_installed.flush)
    _installed.flush()  # a new command (main() called again in one process) counts its own
    for handler in logging.getLogger().handlers:
        # The console handler logging.basicConfig makes; not a test harness's capture handler.
        if type(handler) is logging.StreamHandler and _installed not in handler.filters:
            handler.addFilter(_installed)
    return _installed
