"""Ctrl-C and SIGTERM during an engine build: recorded, then acted on where it is safe.

TensorRT calls back into Python while it builds (the logger, the progress monitor), and
Python runs a signal's handler inside whichever callback comes next. An exception raised
there is swallowed by the binding (`[ERROR] Exception caught in log(): KeyboardInterrupt`)
and the build goes on, writes its files and exits 0. So while a build runs, SIGINT and
SIGTERM only record themselves: the progress monitor then asks TensorRT to cancel, and the
build raises KeyboardInterrupt (or Terminated, for SIGTERM) at the next safe point, before
anything is saved. Saving is outside the block: there a signal raises at once (a stalled
disk is not waited for) and export.engine removes what was written. The command line then
exits 130 or 143 as for any other step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from runtime.app.cli.signals import Terminated

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Deferred:
    """The first SIGINT or SIGTERM that arrived while the block was open, if any."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum

    @property
    def pending(self) -> bool:
        return self.signum is not None

    def raise_pending(self) -> None:
        """Raise what a signal that arrived asks for: Terminated for SIGTERM, else KeyboardInterrupt."""
        if self.signum == signal.SIGTERM:
            raise Terminated()
        if self.signum is not None:
            raise KeyboardInterrupt()


_current: list[Deferred] = []  # the open block's record, so nested blocks share it


@contextlib.contextmanager
def deferred_signals() -> Iterator[Deferred]:
    """Inside, SIGINT and SIGTERM are recorded on the yielded Deferred, not raised; on leaving
    the outermost block the previous handlers come back and a recorded signal is raised.
    Outside the main thread (no handlers can be set there) nothing is deferred."""
    if _current:
        yield _current[-1]
        return
    deferred = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield deferred
        return
    previous = {s: signal.signal(s, deferred) for s in _SIGNALS}
    _current.append(deferred)
    try:
        yield deferred
    except BaseException:
        deferred.raise_pending()  # the signal is why the build stopped (a canceled build logs an error)
        raise
    finally:
        _current.pop()
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
    deferred.raise_pending()


def stop_requested() -> bool:
    """Whether a signal arrived during the open deferred block (the progress monitor asks)."""
    return bool(_current) and _current[-1].pending
