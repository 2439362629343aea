"""Run `python -m MODULE ARGS...` with a stalled disk: the first rename into WATCHED waits.

    python -m tests.fakes.slow_rename MARKER WATCHED MODULE [ARGS...]

Artifacts are written to a temporary file and renamed into place (runtime.core.atomic.atomic_path).
Here the first such rename into the folder WATCHED creates MARKER and then sleeps, so a
test knows the command is mid-write, with its temporary file present, when it sends a
signal; the command runs unchanged otherwise.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path


def main() -> None:
    marker, watched, module, *args = sys.argv[1:]
    real_replace = os.replace

    def stalled_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).resolve().parent == Path(watched).resolve():
            Path(marker).touch()
            time.sleep(600)
        real_replace(src, dst)

    os.replace = stalled_replace  # type: ignore[assignment]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
