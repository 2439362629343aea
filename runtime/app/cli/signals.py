"""SIGTERM ends a command the way Ctrl-C does: cleanup runs, one line, exit 143.

A batch scheduler or `timeout` stops a job with SIGTERM, whose default action kills the
process on the spot: no `finally`, so temporary files stay in the artifact folder and in
/tmp. While a command runs, SIGTERM instead raises `Terminated` in the main thread. It is
a KeyboardInterrupt, so every cleanup path written for Ctrl-C (atomic writes, temporary
folders, stopping worker processes) runs for it too, and only the last line differs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_TERMINATED = 128 + int(signal.SIGTERM)  # what a shell reports for a SIGTERM death: 143


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised where the main thread was, so cleanup runs as for Ctrl-C."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    # One is enough: a second SIGTERM must not break off the cleanup the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside the block, SIGTERM raises Terminated (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler set outside Python, which cannot be restored
            signal.signal(signal.SIGTERM, previous)
