"""Run `python -m MODULE ARGS...` with a slow cleanup: the first HostPipeline.close(abort=True)
creates MARKER, waits a second, closes, then creates MARKER.done.

    python -m tests.fakes.slow_cleanup MARKER MODULE [ARGS...]

A test that sends Ctrl-C, waits for MARKER and sends a second Ctrl-C knows that the second
one lands inside the cleanup that the first one started, and MARKER.done says whether that
cleanup ran to its end; the command runs unchanged otherwise.
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

from runtime.app.images.pipeline import HostPipeline


def main() -> None:
    marker, module, *args = sys.argv[1:]
    real_close = HostPipeline.close

    def slow_close(self: HostPipeline, abort: bool = False) -> None:
        if abort and not Path(marker).exists():
            Path(marker).touch()
            time.sleep(1.0)  # a signal now lands in the cleanup, as a second Ctrl-C would
            real_close(self, abort)
            Path(marker + ".done").touch()
            return
        real_close(self, abort)

    HostPipeline.close = slow_close  # type: ignore[method-assign]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
