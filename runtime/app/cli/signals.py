"""SIGTERM ends a command the way Ctrl-C does: cleanup runs, one line, exit 143.

A batch scheduler or `timeout` stops a job with SIGTERM, whose default action kills the
process on the spot: no `finally`, so temporary files stay in the artifact folder and in
/tmp. While a command runs, SIGTERM instead raises `Terminated` in the main thread. It is
a KeyboardInterrupt, so every cleanup path written for Ctrl-C (atomic writes, temporary
folders, stopping worker processes) runs for it too, and only the last line differs.

The first Ctrl-C or SIGTERM is the one that counts: from then on both are ignored until
the process exits, so a second Ctrl-C pressed during the cleanup (a user's habit) neither
breaks it off with an "Exception ignored" traceback nor kills the process at shutdown;
the command still ends with its one line and exit 130 (or 143).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised where the main thread was, so cleanup runs as for Ctrl-C."""


def _ignore_more() -> None:
    # One is enough: a second signal must not break off the cleanup the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside the block, SIGTERM raises Terminated and Ctrl-C KeyboardInterrupt, each only
    once (main thread only; elsewhere a no-op). After either, both stay ignored: the
    process is on its way out, and its cleanup and shutdown must not be interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _ignore_more()
        stopping.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, on_signal)
    if previous[signal.SIGINT] is signal.default_int_handler:  # not where SIGINT is ignored (nohup, &)
        signal.signal(signal.SIGINT, on_signal)
    try:
        yield
    finally:
        if not stopping:
            for sig, handler in previous.items():
                if handler is not None:  # None: a handler set outside Python, which cannot be restored
                    signal.signal(sig, handler)
